package main_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"phoneshop/internal/consultest"
	"phoneshop/internal/dbtest"
	"phoneshop/internal/mailpittest"
	"phoneshop/internal/rabbittest"
	"phoneshop/internal/shoptest"
	"phoneshop/internal/testbin"
)

// liftedRateLimits lift an edge's per-address limits: every client of these tests
// is 127.0.0.1, and they test the cluster under load, not the limits (which
// edge/burst_test.go tests at their shipped values).
var liftedRateLimits = []string{
	"PHONESHOP_RATE_REGISTER_PER_MIN=1000000", "PHONESHOP_RATE_REGISTER_BURST=1000000",
	"PHONESHOP_RATE_LOGIN_PER_MIN=1000000", "PHONESHOP_RATE_LOGIN_BURST=1000000",
	"PHONESHOP_RATE_CHECKOUT_PER_MIN=1000000", "PHONESHOP_RATE_CHECKOUT_BURST=1000000",
	"PHONESHOP_RATE_ACCOUNT_PER_MIN=1000000", "PHONESHOP_RATE_ACCOUNT_BURST=1000000",
	"PHONESHOP_RATE_PREFERENCES_PER_MIN=1000000", "PHONESHOP_RATE_PREFERENCES_BURST=1000000",
}

// The cluster tests' harness: a real Consul agent, a fresh MariaDB database and
// Redis prefix, and `phoneshop node` and `phoneshop edge` processes of one binary,
// built once for the package. The test is the processes' supervisor, as compose's
// `restart: unless-stopped` is: it kills, stops, continues and restarts them, and
// restarts one that exits on its own (and says so). Every process listens on
// ports of the test's own (testbin.Port), kept across its restarts.

// Every cluster test's admin account (edges create it at start).
const (
	clusterAdminEmail    = "admin@example.com"
	clusterAdminPassword = "admin password 1"
)

// serviceName is the Consul service every member registers under (cluster.Name).
const serviceName = "phoneshop"

// sharedBinary is the phoneshop binary, built on first use and removed by TestMain.
var sharedBinary struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// TestMain removes the binary the cluster tests share.
func TestMain(m *testing.M) {
	code := m.Run()
	if sharedBinary.dir != "" {
		_ = os.RemoveAll(sharedBinary.dir)
	}
	os.Exit(code)
}

// phoneshopBinary builds the binary once for every cluster test of the run.
func phoneshopBinary(t testing.TB) string {
	t.Helper()
	sharedBinary.once.Do(func() {
		dir, err := os.MkdirTemp("", "phoneshop-cluster-test-")
		if err != nil {
			sharedBinary.err = err
			return
		}
		sharedBinary.dir, sharedBinary.path = dir, filepath.Join(dir, "phoneshop")
		if out, err := exec.Command("go", "build", "-o", sharedBinary.path, ".").CombinedOutput(); err != nil {
			sharedBinary.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if sharedBinary.err != nil {
		t.Fatal(sharedBinary.err)
	}
	return sharedBinary.path
}

// clusterSpec says what to start.
type clusterSpec struct {
	Nodes, Edges int
	// Mailers start beside a Mailpit of the test's own (Cluster.Mailpit); every
	// cluster has a RabbitMQ vhost of its own, which its nodes relay to.
	Mailers int
	// Env is added to every process's environment, after the harness's own
	// (PHONESHOP_CONSUL_TTL, PHONESHOP_RESERVATION_TTL, ...).
	Env []string
}

// shopCluster is a running cluster under test.
type shopCluster struct {
	t      testing.TB
	Consul *consultest.Agent
	api    *api.Client
	Nodes  []*shopProcess
	Edges  []*shopProcess
	// Mailers send through Mailpit (nil without mailers).
	Mailers []*shopProcess
	Mailpit *mailpittest.Server
	// RabbitURL is the cluster's vhost; DSN its database.
	RabbitURL, DSN string
	procs          *shopProcesses
}

// startCluster starts Consul, a fresh database, spec.Nodes nodes (each on a fixed
// cluster port of its own, as compose gives them) and spec.Edges edges, and returns
// once every node is ready and registered in Consul and every edge answers /readyz.
// Everything is stopped when the test ends; when it failed, the end of every
// process's output is logged.
// clusterUnsubscribeSecret is what every edge of a test cluster signs links with.
const clusterUnsubscribeSecret = "test cluster unsubscribe secret, 32+ characters"

func startCluster(t testing.TB, spec clusterSpec) *shopCluster {
	t.Helper()
	begin := time.Now()
	agent := consultest.Start(t)
	dsn := dbtest.MySQLDSN(t)
	redisAddr, redisPrefix := dbtest.Redis(t)
	client, err := api.NewClient(&api.Config{Address: agent.HTTP})
	if err != nil {
		t.Fatal(err)
	}
	c := &shopCluster{t: t, Consul: agent, api: client, RabbitURL: rabbittest.VHost(t), DSN: dsn}
	if spec.Mailers > 0 {
		c.Mailpit = mailpittest.Start(t)
	}
	c.procs = newShopProcesses(t) // stopped before the servers above
	common := []string{
		"PHONESHOP_MYSQL_DSN=" + dsn,
		"PHONESHOP_CONSUL_ADDR=" + agent.HTTP,
		"PHONESHOP_REDIS_ADDR=" + redisAddr,
		"PHONESHOP_REDIS_PREFIX=" + redisPrefix,
		"PHONESHOP_LOG_LEVEL=warn",
		"PHONESHOP_SHUTDOWN_TIMEOUT=5s",
		"PHONESHOP_RABBITMQ_URL=" + c.RabbitURL,
	}
	for i := range spec.Nodes {
		c.Nodes = append(c.Nodes, c.procs.add(fmt.Sprintf("node%d", i+1), "node", slices.Concat(common, spec.Env), nodePorts))
	}
	for i := range spec.Edges {
		c.Edges = append(c.Edges, c.procs.add(fmt.Sprintf("edge%d", i+1), "edge", slices.Concat(common, []string{
			"PHONESHOP_ADMIN_EMAIL=" + clusterAdminEmail, "PHONESHOP_ADMIN_PASSWORD=" + clusterAdminPassword,
			"PHONESHOP_UNSUBSCRIBE_SECRET=" + clusterUnsubscribeSecret,
			// argon2id at its shipped cost makes hundreds of test accounts slow.
			"PHONESHOP_PASSWORD_MEMORY_KIB=64", "PHONESHOP_PASSWORD_ITERATIONS=1",
		}, liftedRateLimits, spec.Env), httpPort))
	}

	// The first process on a fresh database migrates it and seeds the catalog; the
	// others start together once it has.
	c.procs.launch(90*time.Second, c.Nodes[0])
	c.procs.launch(90*time.Second, slices.Concat(c.Nodes[1:], c.Edges)...)
	// Mailers link to the first edge, whose address is final once it runs.
	if spec.Mailers > 0 {
		for i := range spec.Mailers {
			c.Mailers = append(c.Mailers, c.procs.add(fmt.Sprintf("mailer%d", i+1), "mailer", slices.Concat(common, []string{
				"PHONESHOP_SMTP_HOST=" + c.Mailpit.SMTPHost, fmt.Sprintf("PHONESHOP_SMTP_PORT=%d", c.Mailpit.SMTPPort),
				"PHONESHOP_SMTP_TLS=none", "PHONESHOP_UNSUBSCRIBE_SECRET=" + clusterUnsubscribeSecret,
				"PHONESHOP_PUBLIC_URL=" + c.Edges[0].URL,
			}, spec.Env), healthPort))
		}
		c.procs.launch(90*time.Second, c.Mailers...)
	}
	c.WaitMembers(time.Now().Add(30 * time.Second))
	t.Logf("cluster of %d nodes and %d edges up in %s", len(c.Nodes), len(c.Edges), time.Since(begin).Round(time.Millisecond))
	return c
}

// Edge is an HTTP client of edge i.
func (c *shopCluster) Edge(i int) *shoptest.Harness {
	return &shoptest.Harness{T: c.t, URL: c.Edges[i].URL, Client: &http.Client{Timeout: 15 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
}

// Admin logs the admin in through h.
func (c *shopCluster) Admin(h *shoptest.Harness) string {
	c.t.Helper()
	token, err := h.TryLogin(clusterAdminEmail, clusterAdminPassword)
	if err != nil {
		c.t.Fatal(err)
	}
	return token
}

// nodeAddrs are the cluster addresses of the nodes, sorted.
func (c *shopCluster) nodeAddrs() []string {
	var addrs []string
	for _, n := range c.Nodes {
		addrs = append(addrs, n.ClusterAddr)
	}
	slices.Sort(addrs)
	return addrs
}

// NodeByAddr names the node whose cluster remote listens on addr ("" if none).
func (c *shopCluster) NodeByAddr(addr string) string {
	for _, n := range c.Nodes {
		if n.ClusterAddr == addr {
			return n.Name
		}
	}
	return ""
}

// consulMember is one registration of the phoneshop service in Consul.
type consulMember struct {
	ID, Addr, Status string
}

// ConsulMembers lists every registration of the service with its aggregated check
// status (passing, warning, critical).
func (c *shopCluster) ConsulMembers() ([]consulMember, error) {
	entries, _, err := c.api.Health().Service(serviceName, "", false, nil)
	if err != nil {
		return nil, err
	}
	var out []consulMember
	for _, e := range entries {
		out = append(out, consulMember{ID: e.Service.ID, Addr: net.JoinHostPort(e.Service.Address, strconv.Itoa(e.Service.Port)),
			Status: e.Checks.AggregatedStatus()})
	}
	return out, nil
}

// PassingAddrs are the sorted addresses of the passing registrations.
func (c *shopCluster) PassingAddrs() ([]string, error) {
	members, err := c.ConsulMembers()
	if err != nil {
		return nil, err
	}
	var addrs []string
	for _, m := range members {
		if m.Status == api.HealthPassing {
			addrs = append(addrs, m.Addr)
		}
	}
	slices.Sort(addrs)
	return addrs, nil
}

// WaitMembers waits until the passing registrations in Consul are exactly the
// nodes (one each, at their cluster addresses), failing the test at the deadline.
func (c *shopCluster) WaitMembers(deadline time.Time) {
	c.t.Helper()
	c.WaitPassing(c.nodeAddrs(), deadline)
}

// WaitPassing waits until the passing registrations are exactly at addrs.
func (c *shopCluster) WaitPassing(addrs []string, deadline time.Time) {
	c.t.Helper()
	for {
		got, err := c.PassingAddrs()
		if err == nil && slices.Equal(got, addrs) {
			return
		}
		if time.Now().After(deadline) {
			members, _ := c.ConsulMembers()
			c.t.Fatalf("Consul's passing members are %v (err %v), want %v; every registration: %+v", got, err, addrs, members)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// opsMember is a member as GET /api/v1/ops/cluster reports it.
type opsMember struct {
	ID          string         `json:"id"`
	Address     string         `json:"address"`
	Kinds       []string       `json:"kinds"`
	Activations map[string]int `json:"activations"`
	Status      string         `json:"status"`
}

// OpsMembers reads the cluster as an edge's ops endpoint reports it.
func OpsMembers(h *shoptest.Harness, admin string) ([]opsMember, error) {
	r, err := h.TryDo(shoptest.Request{Method: "GET", Path: "/api/v1/ops/cluster", Token: admin})
	if err != nil {
		return nil, err
	}
	if r.Status != http.StatusOK {
		return nil, fmt.Errorf("GET /api/v1/ops/cluster: %d %s", r.Status, r.Body)
	}
	var body struct {
		Members []opsMember `json:"members"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil {
		return nil, fmt.Errorf("GET /api/v1/ops/cluster: %v: %s", err, r.Body)
	}
	return body.Members, nil
}

// upMembers are the members with status "up".
func upMembers(members []opsMember) []opsMember {
	var up []opsMember
	for _, m := range members {
		if m.Status == "up" {
			up = append(up, m)
		}
	}
	return up
}

// WaitOpsUp waits until the edge's ops endpoint lists the nodes as members "up",
// one member per node address (members in another status may be listed beside
// them), and returns those members.
func (c *shopCluster) WaitOpsUp(h *shoptest.Harness, admin string, deadline time.Time) []opsMember {
	c.t.Helper()
	want := c.nodeAddrs()
	for {
		members, err := OpsMembers(h, admin)
		var addrs []string
		up := upMembers(members)
		for _, m := range up {
			addrs = append(addrs, m.Address)
		}
		slices.Sort(addrs)
		if err == nil && slices.Equal(addrs, want) {
			return up
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("the ops endpoint lists %d members up at %v (err %v), want the %d nodes at %v; all members: %+v",
				len(up), addrs, err, len(want), want, members)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// RequireNoExits fails the test if a process exited without being told to, except
// those named.
func (c *shopCluster) RequireNoExits(except ...*shopProcess) {
	c.t.Helper()
	requireNoExits(c.t, slices.Concat(c.Nodes, c.Edges), except...)
}

// requireNoExits fails t if one of procs exited without being told to, except
// those named.
func requireNoExits(t testing.TB, procs []*shopProcess, except ...*shopProcess) {
	t.Helper()
	for _, p := range procs {
		exits := p.Exits()
		if len(exits) > 0 && !slices.Contains(except, p) {
			t.Errorf("%s exited on its own (restarted as a supervisor would): %v", p.Name, exits)
		} else if len(exits) > 0 {
			t.Logf("%s exited on its own (restarted as a supervisor would): %v", p.Name, exits)
		}
	}
}

// shopProcesses are the phoneshop processes of one test (of the binary built
// once for the package), and their supervisor. Every one is stopped when the test
// ends; when it failed, the end of every process's output is logged. The output
// is kept in $PHONESHOP_TEST_CLUSTER_LOGS/<test> when that is set.
type shopProcesses struct {
	t      testing.TB
	bin    string
	logDir string
	all    []*shopProcess
	// closing is set when the test ends: exits are no longer supervised.
	closing atomic.Bool
}

func newShopProcesses(t testing.TB) *shopProcesses {
	t.Helper()
	ps := &shopProcesses{t: t, bin: phoneshopBinary(t), logDir: t.TempDir()}
	if dir := os.Getenv("PHONESHOP_TEST_CLUSTER_LOGS"); dir != "" {
		ps.logDir = filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_"))
		if err := os.MkdirAll(ps.logDir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(ps.dumpLogsOnFailure) // runs after stop: the logs end with the shutdown
	t.Cleanup(ps.stopAll)
	return ps
}

// add describes a process, `phoneshop <role>` on env; launch starts it. ports
// reserves the ports of its first start (testbin.Port), sets its addresses, and
// returns the environment that hands them to it.
func (ps *shopProcesses) add(name, role string, env []string, ports func(*shopProcess) []string) *shopProcess {
	p := &shopProcess{ps: ps, Name: name, role: role, env: env, ports: ports,
		logPath: filepath.Join(ps.logDir, name+".log")}
	ps.all = append(ps.all, p)
	return p
}

// The ports of each role.

// nodePorts: a node's cluster port (fixed, as compose gives them: a restarted node
// comes back at the same address) and its health listener.
func nodePorts(p *shopProcess) []string {
	clusterAddr, healthAddr := testbin.Addr(p.ps.t), testbin.Addr(p.ps.t)
	_, port, _ := net.SplitHostPort(clusterAddr)
	p.ClusterAddr, p.healthURL = clusterAddr, "http://"+healthAddr
	return []string{"PHONESHOP_CLUSTER_PORT=" + port, "PHONESHOP_HEALTH_ADDR=" + healthAddr}
}

// healthPort: the health listener only (a mailer; a node whose cluster port is
// its own choice).
func healthPort(p *shopProcess) []string {
	healthAddr := testbin.Addr(p.ps.t)
	p.healthURL = "http://" + healthAddr
	return []string{"PHONESHOP_HEALTH_ADDR=" + healthAddr}
}

// httpPort: the HTTP API of an edge (or of dev).
func httpPort(p *shopProcess) []string {
	addr := testbin.Addr(p.ps.t)
	p.URL = "http://" + addr
	return []string{"PHONESHOP_HTTP_ADDR=" + addr}
}

// launch is the first start of procs: each on ports of its own, all at once. It
// returns once every one is ready, and fails the test if one is not within the
// time given or exits. One that could not bind a port (taken after all, by a
// listener outside the tests: see testbin.Port) is started again on new ports.
func (ps *shopProcesses) launch(within time.Duration, procs ...*shopProcess) {
	ps.t.Helper()
	for _, p := range procs {
		if err := p.beginLaunch(); err != nil {
			ps.t.Fatal(err)
		}
	}
	errs := make([]error, len(procs))
	var wg sync.WaitGroup
	for i, p := range procs {
		wg.Go(func() { errs[i] = p.waitLaunched(within) })
	}
	wg.Wait()
	for i, p := range procs {
		err := errs[i]
		if errors.Is(err, testbin.ErrPortTaken) {
			ps.t.Logf("%s: %v; starting it again on new ports", p.Name, err)
			err = testbin.RetryOnTakenPort(ps.t, p.Name, func() error {
				if err := p.beginLaunch(); err != nil {
					return err
				}
				return p.waitLaunched(within)
			})
		}
		if err != nil {
			ps.t.Fatal(err)
		}
	}
}

func (ps *shopProcesses) stopAll() {
	ps.closing.Store(true)
	var wg sync.WaitGroup
	for _, p := range ps.all {
		wg.Go(p.terminate)
	}
	wg.Wait()
}

func (ps *shopProcesses) dumpLogsOnFailure() {
	if !ps.t.Failed() {
		return
	}
	for _, p := range ps.all {
		ps.t.Logf("---- %s (%s %s) output, last lines ----\n%s", p.Name, p.role, p.ClusterAddr+p.URL, tail(p.logPath, 80))
	}
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// shopProcess is one phoneshop process of a test, started again on the same
// environment (and so on the same ports) after a kill.
type shopProcess struct {
	ps    *shopProcesses
	Name  string
	role  string
	env   []string // all but the ports
	ports func(*shopProcess) []string
	// ClusterAddr is a node's cluster address (fixed: PHONESHOP_CLUSTER_PORT).
	ClusterAddr string
	healthURL   string
	// URL is an edge's HTTP address.
	URL     string
	logPath string

	mu       sync.Mutex
	portEnv  []string // the ports' environment, from ports at the first start
	cmd      *exec.Cmd
	exited   chan struct{} // closed when cmd has exited
	logStart int64         // where cmd's output begins in the log
	expected bool          // the test killed or terminated cmd
	// launching: the first start is not ready yet. An exit then is the launch's
	// to report (and a bind failure's to retry), not the supervisor's.
	launching bool
	exits     []string // exits nobody asked for
}

// Start starts the process again on its ports, failing the test if it cannot.
func (p *shopProcess) Start() {
	p.ps.t.Helper()
	if err := p.start(); err != nil {
		p.ps.t.Fatal(err)
	}
}

func (p *shopProcess) start() error {
	out, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer out.Close() // the child has its own descriptor
	info, err := out.Stat()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "==== %s: phoneshop %s starting at %s\n", p.Name, p.role, time.Now().Format(time.TimeOnly+".000"))
	cmd := exec.Command(p.ps.bin, p.role)
	p.mu.Lock()
	cmd.Env = slices.Concat(os.Environ(), p.portEnv, p.env)
	p.mu.Unlock()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	exited := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.exited, p.logStart, p.expected = cmd, exited, info.Size(), false
	p.mu.Unlock()
	go p.supervise(cmd, exited)
	return nil
}

// beginLaunch gives the process new ports and starts it for the first time.
func (p *shopProcess) beginLaunch() error {
	var portEnv []string
	if p.ports != nil {
		portEnv = p.ports(p)
		// Cleanups run last first: the processes stop (and are no longer
		// restarted) before these ports are released.
		p.ps.t.Cleanup(p.ps.stopAll)
	}
	p.mu.Lock()
	p.portEnv, p.launching = portEnv, true
	p.mu.Unlock()
	return p.start()
}

// waitLaunched waits until the process started by beginLaunch is ready. An exit
// first fails the launch, with ErrPortTaken when the process could not bind; so
// does a bind failure that the process only logs (its health listener's), after
// the process is stopped.
func (p *shopProcess) waitLaunched(within time.Duration) error {
	p.mu.Lock()
	cmd, exited, logStart := p.cmd, p.exited, p.logStart
	p.mu.Unlock()
	client := &http.Client{Timeout: 3 * time.Second}
	deadline := time.Now().Add(within)
	last := "no answer"
	for {
		select {
		case <-exited:
			output := p.outputSince(logStart)
			err := fmt.Errorf("%s exited before it was ready (%s); its output:\n%s", p.Name, describeExit(cmd.ProcessState), output)
			if testbin.PortTaken(output) {
				err = fmt.Errorf("%w: %w", testbin.ErrPortTaken, err)
			}
			return err
		default:
		}
		if output := p.outputSince(logStart); testbin.PortTaken(output) {
			p.terminate() // a node leaves the cluster, rather than linger in Consul
			return fmt.Errorf("%w: %s could not bind a port; its output:\n%s", testbin.ErrPortTaken, p.Name, output)
		}
		resp, err := client.Get(p.readyURL())
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				p.mu.Lock()
				p.launching = false
				p.mu.Unlock()
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s was not ready within %s (%s); its output:\n%s", p.Name, within, last, p.outputSince(logStart))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// outputSince is the process's output from offset in its log on.
func (p *shopProcess) outputSince(offset int64) string {
	f, err := os.Open(p.logPath)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	b, err := io.ReadAll(io.NewSectionReader(f, offset, 1<<30))
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// supervise waits for cmd to exit and starts the process again when nobody asked
// it to stop, as compose's `restart: unless-stopped` does.
func (p *shopProcess) supervise(cmd *exec.Cmd, exited chan struct{}) {
	_ = cmd.Wait() // its ProcessState says how it ended
	close(exited)
	closing := p.ps.closing.Load()
	p.mu.Lock()
	expected := p.expected || p.cmd != cmd || p.launching
	if !expected && !closing {
		p.exits = append(p.exits, fmt.Sprintf("%s at %s", describeExit(cmd.ProcessState), time.Now().Format(time.TimeOnly+".000")))
	}
	p.mu.Unlock()
	if expected || closing {
		return
	}
	time.Sleep(time.Second)
	if p.ps.closing.Load() {
		return
	}
	if err := p.start(); err != nil {
		p.mu.Lock()
		p.exits = append(p.exits, "restart failed: "+err.Error())
		p.mu.Unlock()
	}
}

func describeExit(state *os.ProcessState) string {
	if state == nil {
		return "not exited"
	}
	return state.String()
}

// Exits lists the exits nobody asked for.
func (p *shopProcess) Exits() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.exits)
}

// Pid is the running process's id.
func (p *shopProcess) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd.Process.Pid
}

func (p *shopProcess) signal(sig syscall.Signal) {
	p.ps.t.Helper()
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	if err := cmd.Process.Signal(sig); err != nil {
		p.ps.t.Fatalf("%s %s: %v", sig, p.Name, err)
	}
}

// Kill9 kills the process with SIGKILL and waits until it is gone.
func (p *shopProcess) Kill9() {
	p.ps.t.Helper()
	p.mu.Lock()
	p.expected = true
	exited := p.exited
	p.mu.Unlock()
	p.signal(syscall.SIGKILL)
	<-exited
}

// SigStop freezes the process (SIGSTOP).
func (p *shopProcess) SigStop() { p.ps.t.Helper(); p.signal(syscall.SIGSTOP) }

// SigCont lets a frozen process run again (SIGCONT).
func (p *shopProcess) SigCont() { p.ps.t.Helper(); p.signal(syscall.SIGCONT) }

// terminate stops the process with SIGTERM, or SIGKILL after 15s.
func (p *shopProcess) terminate() {
	p.mu.Lock()
	p.expected = true
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-exited:
		return
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGCONT)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-exited
	}
}

func (p *shopProcess) readyURL() string {
	if p.role == "node" || p.role == "mailer" {
		return p.healthURL + "/readyz"
	}
	return p.URL + "/readyz"
}

// waitReady waits until the process answers /readyz with 200.
func (p *shopProcess) waitReady(within time.Duration) {
	p.ps.t.Helper()
	if err := p.tryWaitReady(within); err != nil {
		p.ps.t.Fatal(err)
	}
}

func (p *shopProcess) tryWaitReady(within time.Duration) error {
	client := &http.Client{Timeout: 3 * time.Second}
	deadline := time.Now().Add(within)
	last := "no answer"
	for {
		resp, err := client.Get(p.readyURL())
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s was not ready within %s (%s); exits: %v", p.Name, within, last, p.Exits())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
