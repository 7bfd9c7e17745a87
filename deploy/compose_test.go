package deploy_test

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	driver "github.com/go-sql-driver/mysql"

	"phoneshop/config"
)

// The roles a phoneshop service runs, told apart by the service's command.
const (
	roleNode    = "node"
	roleEdge    = "edge"
	roleMailer  = "mailer"
	roleMigrate = "migrate"
)

// The topology's shape: how many of each role, and the services every node and
// edge needs before it can start.
const (
	wantNodes   = 3
	wantEdges   = 2
	edgePort    = 8080
	edgeBalance = "haproxy"
)

var stores = []string{"mysql", "redis", "consul"}

// The services the shop's processes use, by name.
const (
	mysqlService    = "mysql"
	redisService    = "redis"
	rabbitService   = "rabbitmq"
	consulService   = "consul"
	mailpitService  = "mailpit"
	mailpitInbox    = 8025
	mysqlInitTarget = "/docker-entrypoint-initdb.d"
	mysqlInitDir    = "deploy/mysql-init"
)

// secrets are the variables the file must require from the operator's
// environment (${VAR:?message}), each with a distinct value, so that a check can
// tell which one reached a service.
var secrets = map[string]string{
	"MYSQL_ROOT_PASSWORD":          "root-secret-0",
	"MYSQL_MIGRATE_PASSWORD":       "migrate-secret-1",
	"MYSQL_APP_PASSWORD":           "app-secret-2",
	"PHONESHOP_REDIS_PASSWORD":     "redis-secret-3",
	"RABBITMQ_PASSWORD":            "rabbit-secret-4",
	"PHONESHOP_UNSUBSCRIBE_SECRET": "0123456789abcdef0123456789abcdef",
}

// composeEnv stands in for the operator's shell during ${...} interpolation, so the
// test does not depend on the environment it runs in.
func composeEnv() []string {
	env := []string{
		"PHONESHOP_ADMIN_EMAIL=admin@example.com",
		"PHONESHOP_ADMIN_PASSWORD=admin-password",
		"PHONESHOP_LOG_LEVEL=debug",
	}
	for k, v := range secrets {
		env = append(env, k+"="+v)
	}
	return env
}

func loadProject(t *testing.T) *types.Project {
	t.Helper()
	p, err := loadFile("../docker-compose.yml", composeEnv())
	if err != nil {
		t.Fatalf("load docker-compose.yml: %v", err)
	}
	return p
}

// loadFile loads a compose file with env as the operator's environment; relative
// paths in it are the repository's.
func loadFile(file string, env []string) (*types.Project, error) {
	opts, err := cli.NewProjectOptions([]string{file},
		cli.WithWorkingDirectory(".."),
		cli.WithEnv(env),
		cli.WithInterpolation(true),
	)
	if err != nil {
		return nil, fmt.Errorf("compose options: %w", err)
	}
	return cli.ProjectFromOptions(context.Background(), opts)
}

// envNames returns the environment variables a config struct reads: the `env:` part
// of every field's conf tag, prefixed by PHONESHOP_, through embedded and nested
// structs (conf uses an explicit env name as is, whatever the nesting).
func envNames(t *testing.T, cfg any) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	var walk func(reflect.Type)
	walk = func(typ reflect.Type) {
		for f := range typ.Fields() {
			tag := f.Tag.Get("conf")
			switch {
			case tag == "-" || !f.IsExported():
			case f.Name == "Args" && f.Type.Kind() == reflect.Slice:
				// conf.Args: the positional arguments, no environment variable.
			case f.Type.Kind() == reflect.Struct && tag == "":
				walk(f.Type)
			default:
				name := ""
				for part := range strings.SplitSeq(tag, ",") {
					if v, ok := strings.CutPrefix(strings.TrimSpace(part), "env:"); ok {
						name = v
					}
				}
				if name == "" {
					t.Fatalf("%s.%s has no env: in its conf tag %q; name its variable explicitly", typ, f.Name, tag)
				}
				names[config.Prefix+"_"+name] = true
			}
		}
	}
	walk(reflect.TypeOf(cfg))
	return names
}

// allowedEnv is, per role, the PHONESHOP_ variables its config struct reads.
func allowedEnv(t *testing.T) map[string]map[string]bool {
	t.Helper()
	return map[string]map[string]bool{roleNode: envNames(t, config.Node{}), roleEdge: envNames(t, config.Edge{}),
		roleMailer: envNames(t, config.Mailer{}), roleMigrate: envNames(t, config.Migrate{})}
}

// role is the phoneshop role a service runs ("" for any other service).
func role(s types.ServiceConfig) string {
	if len(s.Command) == 0 {
		return ""
	}
	switch s.Command[0] {
	case roleNode, roleEdge, roleMailer, roleMigrate:
		return s.Command[0]
	}
	return ""
}

// byRole returns the names of the services running role, sorted.
func byRole(p *types.Project, r string) []string {
	var names []string
	for name, s := range p.Services {
		if role(s) == r {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// phoneshopServices returns the node and edge services, sorted by name.
func phoneshopServices(p *types.Project) []string {
	return slices.Concat(byRole(p, roleNode), byRole(p, roleEdge))
}

// storeUsers returns the services that run the shop on its store: nodes, edges
// and mailers (not the migration).
func storeUsers(p *types.Project) []string {
	return slices.Concat(phoneshopServices(p), byRole(p, roleMailer))
}

// withEnv returns the names of the services that set key, sorted.
func withEnv(p *types.Project, key string) []string {
	var names []string
	for name, s := range p.Services {
		if _, ok := s.Environment[key]; ok {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// publishes reports whether port is published on the host by one of ports.
func publishes(ports []types.ServicePortConfig, port int) bool {
	for _, pc := range ports {
		lo, hi, ok := strings.Cut(pc.Published, "-")
		if !ok {
			hi = lo
		}
		l, errL := strconv.Atoi(lo)
		h, errH := strconv.Atoi(hi)
		if errL == nil && errH == nil && l <= port && port <= h {
			return true
		}
	}
	return false
}

func envValue(s types.ServiceConfig, key string) string {
	if v, ok := s.Environment[key]; ok && v != nil {
		return *v
	}
	return ""
}

// A check returns what is wrong with the topology, nothing when it is right.
type check func(t *testing.T, p *types.Project) []string

var checks = []struct {
	name  string
	check check
}{
	{"every service builds or names an image", checkImages},
	{"node env keys are config.Node settings", checkEnv(roleNode)},
	{"edge env keys are config.Edge settings", checkEnv(roleEdge)},
	{"mailer env keys are config.Mailer settings", checkEnv(roleMailer)},
	{"migrate env keys are config.Migrate settings", checkEnv(roleMigrate)},
	{"edge port is published by haproxy only", checkEdgePort},
	{"edges publish nothing", checkEdgesUnpublished},
	{"every node and edge has a health check", checkHealthChecks},
	{"health checks probe the role's own listener", checkProbeTargets},
	{"nodes and edges wait for healthy stores", checkStoreDependencies},
	{"edges wait for healthy nodes", checkEdgeDependencies},
	{"a service waited on as healthy has a health check", checkWaitedOnHaveHealthChecks},
	{"exactly 3 nodes and 2 edges", checkCounts},
	{"cluster hosts are dialable addresses", checkClusterHosts},
	{"redis requires the password its clients have", checkRedisPassword},
	{"the shop runs as the MySQL user that only reads and writes rows", checkAppUser},
	{"only the migrate service changes the schema", checkMigrateService},
	{"the shop's processes wait for the migration", checkWaitForMigration},
	{"mysql makes the row-only user on its first start", checkMySQLInit},
	{"rabbitmq has the shop's own user, not guest", checkRabbitMQUser},
	{"edges reach the mail queues (the ops mail view)", checkEdgesReachTheBroker},
	{"only haproxy publishes beyond this host", checkLoopbackOnly},
	{"mailpit's inbox is on localhost", checkMailpitInbox},
	{"consul, without ACLs, publishes nothing", checkConsulPrivate},
}

func checkImages(_ *testing.T, p *types.Project) []string {
	var bad []string
	for name, s := range p.Services {
		if s.Build == nil && s.Image == "" {
			bad = append(bad, name+": neither build nor image")
		}
	}
	return bad
}

func checkEnv(r string) check {
	return func(t *testing.T, p *types.Project) []string {
		allowed := allowedEnv(t)[r]
		var bad []string
		for _, name := range byRole(p, r) {
			for key := range p.Services[name].Environment {
				if strings.HasPrefix(key, config.Prefix+"_") && !allowed[key] {
					bad = append(bad, fmt.Sprintf("%s: %s is not read by config.%s", name, key,
						map[string]string{roleNode: "Node", roleEdge: "Edge", roleMailer: "Mailer", roleMigrate: "Migrate"}[r]))
				}
			}
		}
		return bad
	}
}

func checkEdgePort(_ *testing.T, p *types.Project) []string {
	var bad []string
	for name, s := range p.Services {
		if name != edgeBalance && publishes(s.Ports, edgePort) {
			bad = append(bad, fmt.Sprintf("%s publishes %d: only %s does", name, edgePort, edgeBalance))
		}
	}
	lb, ok := p.Services[edgeBalance]
	if !ok {
		return append(bad, "no "+edgeBalance+" service")
	}
	if !slices.ContainsFunc(lb.Ports, func(pc types.ServicePortConfig) bool {
		return pc.Target == edgePort && pc.Published == strconv.Itoa(edgePort)
	}) {
		bad = append(bad, fmt.Sprintf("%s does not publish %d:%d", edgeBalance, edgePort, edgePort))
	}
	return bad
}

func checkEdgesUnpublished(_ *testing.T, p *types.Project) []string {
	var bad []string
	for _, name := range byRole(p, roleEdge) {
		s := p.Services[name]
		if len(s.Ports) > 0 {
			bad = append(bad, fmt.Sprintf("%s publishes %v", name, s.Ports))
		}
		if s.NetworkMode == "host" {
			bad = append(bad, name+": network_mode host publishes every port")
		}
	}
	return bad
}

// hasHealthCheck reports whether s runs a health check.
func hasHealthCheck(s types.ServiceConfig) bool {
	h := s.HealthCheck
	return h != nil && !h.Disable && len(h.Test) > 0 && h.Test[0] != "NONE"
}

func checkHealthChecks(_ *testing.T, p *types.Project) []string {
	var bad []string
	for _, name := range phoneshopServices(p) {
		if !hasHealthCheck(p.Services[name]) {
			bad = append(bad, name+": no health check")
		}
	}
	return bad
}

// checkProbeTargets: the image has no curl, so a health check is `phoneshop probe`,
// and it must hit the listener the service's own env opens: the node's health
// listener has no default, the edge's probes are on its HTTP listener.
func checkProbeTargets(_ *testing.T, p *types.Project) []string {
	listener := map[string]string{roleNode: "PHONESHOP_HEALTH_ADDR", roleEdge: "PHONESHOP_HTTP_ADDR"}
	var bad []string
	for _, name := range phoneshopServices(p) {
		s := p.Services[name]
		if !hasHealthCheck(s) {
			continue // reported by checkHealthChecks
		}
		test := s.HealthCheck.Test
		if len(test) != 4 || test[0] != "CMD" || test[1] != "/phoneshop" || test[2] != "probe" {
			bad = append(bad, fmt.Sprintf("%s: health check %q is not [CMD /phoneshop probe URL]", name, test))
			continue
		}
		u, err := url.Parse(test[3])
		if err != nil || u.Path != "/readyz" {
			bad = append(bad, fmt.Sprintf("%s: probe URL %q is not a /readyz URL", name, test[3]))
			continue
		}
		key := listener[role(s)]
		addr := envValue(s, key)
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s: %s=%q is not a listen address", name, key, addr))
			continue
		}
		if u.Port() != port {
			bad = append(bad, fmt.Sprintf("%s: probes port %q but %s listens on %q", name, u.Port(), key, addr))
		}
	}
	return bad
}

// waitsHealthy returns what is wrong with how service name waits for deps.
func waitsHealthy(p *types.Project, name string, deps []string) []string {
	var bad []string
	for _, dep := range deps {
		d, ok := p.Services[name].DependsOn[dep]
		switch {
		case !ok:
			bad = append(bad, fmt.Sprintf("%s does not depend on %s", name, dep))
		case d.Condition != types.ServiceConditionHealthy:
			bad = append(bad, fmt.Sprintf("%s waits for %s with condition %q, not %s", name, dep, d.Condition, types.ServiceConditionHealthy))
		}
	}
	return bad
}

func checkStoreDependencies(_ *testing.T, p *types.Project) []string {
	var bad []string
	for _, name := range phoneshopServices(p) {
		bad = append(bad, waitsHealthy(p, name, stores)...)
	}
	return bad
}

// checkEdgesReachTheBroker: GET /api/v1/ops/mail and the dead letters' redrive run
// on the edges, which read the queues themselves (503 without a broker URL).
func checkEdgesReachTheBroker(_ *testing.T, p *types.Project) []string {
	var bad []string
	for _, name := range byRole(p, roleEdge) {
		if envValue(p.Services[name], "PHONESHOP_RABBITMQ_URL") == "" {
			bad = append(bad, name+": no PHONESHOP_RABBITMQ_URL: the ops mail view answers 503")
		}
	}
	return bad
}

func checkEdgeDependencies(_ *testing.T, p *types.Project) []string {
	var bad []string
	for _, name := range byRole(p, roleEdge) {
		bad = append(bad, waitsHealthy(p, name, byRole(p, roleNode))...)
	}
	return bad
}

func checkWaitedOnHaveHealthChecks(_ *testing.T, p *types.Project) []string {
	var bad []string
	for name, s := range p.Services {
		for dep, d := range s.DependsOn {
			if d.Condition == types.ServiceConditionHealthy && !hasHealthCheck(p.Services[dep]) {
				bad = append(bad, fmt.Sprintf("%s waits for %s to be healthy, which has no health check", name, dep))
			}
		}
	}
	return bad
}

func checkCounts(_ *testing.T, p *types.Project) []string {
	var bad []string
	if n := byRole(p, roleNode); len(n) != wantNodes {
		bad = append(bad, fmt.Sprintf("%d node services %v, want %d", len(n), n, wantNodes))
	}
	if e := byRole(p, roleEdge); len(e) != wantEdges {
		bad = append(bad, fmt.Sprintf("%d edge services %v, want %d", len(e), e, wantEdges))
	}
	return bad
}

// checkClusterHosts: the config has no advertised host, and the cluster remote
// advertises the address it listens on; a wildcard or loopback address there
// registers an address no other container can dial.
func checkClusterHosts(_ *testing.T, p *types.Project) []string {
	var bad []string
	for _, name := range phoneshopServices(p) {
		host := envValue(p.Services[name], "PHONESHOP_CLUSTER_HOST")
		ip := net.ParseIP(host)
		if host == "" || host == "localhost" || (ip != nil && (ip.IsUnspecified() || ip.IsLoopback())) {
			bad = append(bad, fmt.Sprintf("%s: PHONESHOP_CLUSTER_HOST=%q is not an address peers can dial", name, host))
		}
	}
	return bad
}

// checkRedisPassword: Redis refuses clients without the operator's password, and
// every client of it, and its own health check, has that password.
func checkRedisPassword(_ *testing.T, p *types.Project) []string {
	want := secrets["PHONESHOP_REDIS_PASSWORD"]
	r, ok := p.Services[redisService]
	if !ok {
		return []string{"no " + redisService + " service"}
	}
	var bad []string
	i := slices.Index(r.Command, "--requirepass")
	if i < 0 || i+1 >= len(r.Command) || r.Command[i+1] != want {
		bad = append(bad, fmt.Sprintf("%s: command %q does not require $PHONESHOP_REDIS_PASSWORD (--requirepass)", redisService, r.Command))
	}
	if envValue(r, "REDISCLI_AUTH") != want {
		bad = append(bad, redisService+": REDISCLI_AUTH is not $PHONESHOP_REDIS_PASSWORD: its health check's redis-cli would be refused")
	}
	clients := withEnv(p, "PHONESHOP_REDIS_ADDR")
	if len(clients) == 0 {
		bad = append(bad, "no service uses Redis: the check reads nothing")
	}
	for _, name := range clients {
		if envValue(p.Services[name], "PHONESHOP_REDIS_PASSWORD") != want {
			bad = append(bad, name+": PHONESHOP_REDIS_PASSWORD is not $PHONESHOP_REDIS_PASSWORD")
		}
	}
	return bad
}

// mysqlUsers returns the users the mysql service makes: the one the image grants
// everything on the database (MYSQL_USER, the migration's) and the one
// deploy/mysql-init makes, which may only read and write rows (APP_USER).
func mysqlUsers(p *types.Project) (migrateUser, appUser string) {
	m := p.Services[mysqlService]
	return envValue(m, "MYSQL_USER"), envValue(m, "APP_USER")
}

// dsnUser returns the user and password of a service's PHONESHOP_MYSQL_DSN.
func dsnUser(s types.ServiceConfig) (user, password string, err error) {
	cfg, err := driver.ParseDSN(envValue(s, "PHONESHOP_MYSQL_DSN"))
	if err != nil {
		return "", "", err
	}
	return cfg.User, cfg.Passwd, nil
}

// checkAppUser: every process of the shop but the migration connects as the user
// that may only read and write rows, with the operator's password, and does not
// migrate at start (it could not).
func checkAppUser(_ *testing.T, p *types.Project) []string {
	migrateUser, appUser := mysqlUsers(p)
	var bad []string
	if appUser == "" || appUser == "root" || appUser == migrateUser {
		bad = append(bad, fmt.Sprintf("%s: APP_USER=%q is not a user of its own (MYSQL_USER=%q)", mysqlService, appUser, migrateUser))
	}
	if envValue(p.Services[mysqlService], "APP_PASSWORD") != secrets["MYSQL_APP_PASSWORD"] {
		bad = append(bad, mysqlService+": APP_PASSWORD is not $MYSQL_APP_PASSWORD")
	}
	users := withEnv(p, "PHONESHOP_MYSQL_DSN")
	for _, name := range storeUsers(p) {
		if !slices.Contains(users, name) {
			bad = append(bad, name+": no PHONESHOP_MYSQL_DSN")
		}
	}
	for _, name := range users {
		s := p.Services[name]
		if role(s) == roleMigrate {
			continue // checkMigrateService
		}
		user, password, err := dsnUser(s)
		switch {
		case err != nil:
			bad = append(bad, fmt.Sprintf("%s: PHONESHOP_MYSQL_DSN: %v", name, err))
		case user != appUser:
			bad = append(bad, fmt.Sprintf("%s connects to MySQL as %q, not as the row-only user %q", name, user, appUser))
		case password != secrets["MYSQL_APP_PASSWORD"]:
			bad = append(bad, name+": the password in PHONESHOP_MYSQL_DSN is not $MYSQL_APP_PASSWORD")
		}
		if migrate, err := strconv.ParseBool(envValue(s, "PHONESHOP_MYSQL_MIGRATE")); err != nil || migrate {
			bad = append(bad, fmt.Sprintf("%s: PHONESHOP_MYSQL_MIGRATE=%q, want false: its user may not change the schema",
				name, envValue(s, "PHONESHOP_MYSQL_MIGRATE")))
		}
	}
	return bad
}

// checkMigrateService: one service migrates, once, as the user the image grants
// the database to, after MySQL is healthy.
func checkMigrateService(_ *testing.T, p *types.Project) []string {
	migrateUser, _ := mysqlUsers(p)
	var bad []string
	if migrateUser == "" || migrateUser == "root" {
		bad = append(bad, fmt.Sprintf("%s: MYSQL_USER=%q: the migration needs a user of its own", mysqlService, migrateUser))
	}
	if envValue(p.Services[mysqlService], "MYSQL_PASSWORD") != secrets["MYSQL_MIGRATE_PASSWORD"] {
		bad = append(bad, mysqlService+": MYSQL_PASSWORD is not $MYSQL_MIGRATE_PASSWORD")
	}
	migrations := byRole(p, roleMigrate)
	if len(migrations) != 1 {
		return append(bad, fmt.Sprintf("%d migrate services %v, want 1", len(migrations), migrations))
	}
	name := migrations[0]
	s := p.Services[name]
	user, password, err := dsnUser(s)
	switch {
	case err != nil:
		bad = append(bad, fmt.Sprintf("%s: PHONESHOP_MYSQL_DSN: %v", name, err))
	case user != migrateUser:
		bad = append(bad, fmt.Sprintf("%s migrates as %q, not as %q", name, user, migrateUser))
	case password != secrets["MYSQL_MIGRATE_PASSWORD"]:
		bad = append(bad, name+": the password in PHONESHOP_MYSQL_DSN is not $MYSQL_MIGRATE_PASSWORD")
	}
	// Restarted after it succeeded, the one-shot would run forever.
	if s.Restart != types.RestartPolicyNo && s.Restart != types.RestartPolicyOnFailure {
		bad = append(bad, fmt.Sprintf("%s: restart %q: a one-shot runs once (no or on-failure)", name, s.Restart))
	}
	return append(bad, waitsHealthy(p, name, []string{mysqlService})...)
}

func checkWaitForMigration(_ *testing.T, p *types.Project) []string {
	var bad []string
	migrations := byRole(p, roleMigrate)
	for _, name := range storeUsers(p) {
		for _, m := range migrations {
			if d, ok := p.Services[name].DependsOn[m]; !ok || d.Condition != types.ServiceConditionCompletedSuccessfully {
				bad = append(bad, fmt.Sprintf("%s does not wait for %s to complete successfully", name, m))
			}
		}
	}
	return bad
}

// checkMySQLInit: the image runs deploy/mysql-init (which makes the row-only
// user) on its first start; mysql_init_test.go runs the script itself.
func checkMySQLInit(_ *testing.T, p *types.Project) []string {
	root, err := filepath.Abs("..")
	if err != nil {
		return []string{err.Error()}
	}
	want := filepath.Join(root, mysqlInitDir)
	i := slices.IndexFunc(p.Services[mysqlService].Volumes, func(v types.ServiceVolumeConfig) bool {
		return v.Target == mysqlInitTarget
	})
	if i < 0 {
		return []string{fmt.Sprintf("%s mounts nothing at %s", mysqlService, mysqlInitTarget)}
	}
	v := p.Services[mysqlService].Volumes[i]
	var bad []string
	if v.Type != types.VolumeTypeBind || v.Source != want {
		bad = append(bad, fmt.Sprintf("%s mounts %s %q at %s, want %s", mysqlService, v.Type, v.Source, mysqlInitTarget, mysqlInitDir))
	}
	if _, err := os.Stat(filepath.Join(want, appUserScript)); err != nil {
		bad = append(bad, err.Error())
	}
	return bad
}

// checkRabbitMQUser: the broker makes a user of the shop's with the operator's
// password, and the shop connects as it.
func checkRabbitMQUser(_ *testing.T, p *types.Project) []string {
	r := p.Services[rabbitService]
	user, password := envValue(r, "RABBITMQ_DEFAULT_USER"), envValue(r, "RABBITMQ_DEFAULT_PASS")
	var bad []string
	if user == "" || user == "guest" {
		bad = append(bad, fmt.Sprintf("%s: RABBITMQ_DEFAULT_USER=%q: the broker would make guest", rabbitService, user))
	}
	if password != secrets["RABBITMQ_PASSWORD"] {
		bad = append(bad, rabbitService+": RABBITMQ_DEFAULT_PASS is not $RABBITMQ_PASSWORD")
	}
	clients := withEnv(p, "PHONESHOP_RABBITMQ_URL")
	if len(clients) == 0 {
		bad = append(bad, "no service uses RabbitMQ: the check reads nothing")
	}
	for _, name := range clients {
		u, err := url.Parse(envValue(p.Services[name], "PHONESHOP_RABBITMQ_URL"))
		if err != nil || u.User == nil {
			bad = append(bad, fmt.Sprintf("%s: PHONESHOP_RABBITMQ_URL names no user (%v)", name, err))
			continue
		}
		pw, _ := u.User.Password()
		if u.User.Username() != user || pw != password {
			bad = append(bad, fmt.Sprintf("%s connects to RabbitMQ as %q, not as %q with $RABBITMQ_PASSWORD", name, u.User.Username(), user))
		}
	}
	return bad
}

// checkLoopbackOnly: a port published without a host address is open to the
// network; only the shop's entry point may be.
func checkLoopbackOnly(_ *testing.T, p *types.Project) []string {
	var bad []string
	for name, s := range p.Services {
		if name == edgeBalance {
			continue
		}
		for _, pc := range s.Ports {
			if ip := net.ParseIP(pc.HostIP); ip == nil || !ip.IsLoopback() {
				bad = append(bad, fmt.Sprintf("%s publishes %s on %q, beyond this host", name, pc.Published, pc.HostIP))
			}
		}
	}
	return bad
}

// checkMailpitInbox: the README sends people to the inbox on 127.0.0.1:8025.
func checkMailpitInbox(_ *testing.T, p *types.Project) []string {
	if !slices.ContainsFunc(p.Services[mailpitService].Ports, func(pc types.ServicePortConfig) bool {
		return pc.Target == mailpitInbox && pc.Published == strconv.Itoa(mailpitInbox) && pc.HostIP == "127.0.0.1"
	}) {
		return []string{fmt.Sprintf("%s does not publish its inbox on 127.0.0.1:%d", mailpitService, mailpitInbox)}
	}
	return nil
}

// checkConsulPrivate: compose's Consul has no ACLs (see its comment in the file),
// so it must not be reachable from outside the compose network at all.
func checkConsulPrivate(_ *testing.T, p *types.Project) []string {
	c := p.Services[consulService]
	if len(c.Ports) > 0 || c.NetworkMode == "host" {
		return []string{fmt.Sprintf("%s publishes %v (network mode %q); without ACLs it stays on the compose network", consulService, c.Ports, c.NetworkMode)}
	}
	return nil
}

func TestCompose(t *testing.T) {
	p := loadProject(t)
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			for _, problem := range c.check(t, p) {
				t.Error(problem)
			}
		})
	}
}

// TestChecksCatchBrokenTopology breaks the loaded topology one way at a time and
// expects the matching check to object, so a check that can never fail fails here.
func TestChecksCatchBrokenTopology(t *testing.T) {
	checkNamed := func(t *testing.T, name string) check {
		for _, c := range checks {
			if c.name == name {
				return c.check
			}
		}
		t.Fatalf("no check %q", name)
		return nil
	}
	edit := func(name string, f func(*types.ServiceConfig)) func(*types.Project) {
		return func(p *types.Project) {
			s := p.Services[name]
			f(&s)
			p.Services[name] = s
		}
	}
	setEnv := func(key, value string) func(*types.ServiceConfig) {
		return func(s *types.ServiceConfig) {
			env := types.MappingWithEquals{}
			for k, v := range s.Environment {
				env[k] = v
			}
			env[key] = &value
			s.Environment = env
		}
	}
	publish := func(port string) func(*types.ServiceConfig) {
		return func(s *types.ServiceConfig) {
			s.Ports = append(slices.Clone(s.Ports), types.ServicePortConfig{Target: edgePort, Published: port, Protocol: "tcp"})
		}
	}
	unsetEnv := func(key string) func(*types.ServiceConfig) {
		return func(s *types.ServiceConfig) {
			env := types.MappingWithEquals{}
			for k, v := range s.Environment {
				if k != key {
					env[k] = v
				}
			}
			s.Environment = env
		}
	}
	publishOn := func(hostIP string, port uint32) func(*types.ServiceConfig) {
		return func(s *types.ServiceConfig) {
			s.Ports = []types.ServicePortConfig{{HostIP: hostIP, Target: port, Published: strconv.Itoa(int(port)), Protocol: "tcp"}}
		}
	}
	appDSN := "phoneshop:" + secrets["MYSQL_APP_PASSWORD"] + "@tcp(mysql:3306)/phoneshop"
	dependOn := func(dep, condition string) func(*types.ServiceConfig) {
		return func(s *types.ServiceConfig) {
			deps := types.DependsOnConfig{}
			for k, v := range s.DependsOn {
				deps[k] = v
			}
			if condition == "" {
				delete(deps, dep)
			} else {
				deps[dep] = types.ServiceDependency{Condition: condition, Required: true}
			}
			s.DependsOn = deps
		}
	}

	tests := []struct {
		name   string
		check  string
		mutate func(*types.Project)
	}{
		{"a service with neither build nor image", "every service builds or names an image",
			edit("redis", func(s *types.ServiceConfig) { s.Image, s.Build = "", nil })},
		{"a node with an env key not in config.Node", "node env keys are config.Node settings",
			edit("node1", setEnv("PHONESHOP_NOT_A_SETTING", "x"))},
		{"a node with an edge-only env key", "node env keys are config.Node settings",
			edit("node2", setEnv("PHONESHOP_HTTP_ADDR", ":8080"))},
		{"an edge with an env key not in config.Edge", "edge env keys are config.Edge settings",
			edit("edge1", setEnv("PHONESHOP_MYSQL_DNS", "x"))},
		{"an edge with the dev-only data directory", "edge env keys are config.Edge settings",
			edit("edge2", setEnv("PHONESHOP_DATA_DIR", "/data"))},
		{"another service publishing the edge port", "edge port is published by haproxy only",
			edit("mailpit", publish("8080"))},
		{"a port range covering the edge port", "edge port is published by haproxy only",
			edit("rabbitmq", publish("8000-8100"))},
		{"haproxy not publishing the edge port", "edge port is published by haproxy only",
			edit("haproxy", func(s *types.ServiceConfig) { s.Ports = nil })},
		{"an edge publishing a port", "edges publish nothing",
			edit("edge1", publish("18080"))},
		{"an edge on the host network", "edges publish nothing",
			edit("edge2", func(s *types.ServiceConfig) { s.NetworkMode = "host" })},
		{"a node without a health check", "every node and edge has a health check",
			edit("node3", func(s *types.ServiceConfig) { s.HealthCheck = nil })},
		{"an edge with its health check disabled", "every node and edge has a health check",
			edit("edge2", func(s *types.ServiceConfig) { h := *s.HealthCheck; h.Disable = true; s.HealthCheck = &h })},
		{"a node probing a health listener it does not open", "health checks probe the role's own listener",
			edit("node1", func(s *types.ServiceConfig) { delete(s.Environment, "PHONESHOP_HEALTH_ADDR") })},
		{"an edge probing another port", "health checks probe the role's own listener",
			edit("edge1", setEnv("PHONESHOP_HTTP_ADDR", ":9090"))},
		{"a node started before mysql is healthy", "nodes and edges wait for healthy stores",
			edit("node1", dependOn("mysql", types.ServiceConditionStarted))},
		{"an edge not depending on redis", "nodes and edges wait for healthy stores",
			edit("edge1", dependOn("redis", ""))},
		{"an edge not waiting for a node", "edges wait for healthy nodes",
			edit("edge2", dependOn("node3", ""))},
		{"a healthy wait on a service without a health check", "a service waited on as healthy has a health check",
			edit("consul", func(s *types.ServiceConfig) { s.HealthCheck = nil })},
		{"a fourth node", "exactly 3 nodes and 2 edges",
			func(p *types.Project) { p.Services["node4"] = p.Services["node1"] }},
		{"a single edge", "exactly 3 nodes and 2 edges",
			func(p *types.Project) { delete(p.Services, "edge2") }},
		{"a node listening on every interface", "cluster hosts are dialable addresses",
			edit("node2", setEnv("PHONESHOP_CLUSTER_HOST", "0.0.0.0"))},
		{"an edge without a cluster host", "cluster hosts are dialable addresses",
			edit("edge1", func(s *types.ServiceConfig) { delete(s.Environment, "PHONESHOP_CLUSTER_HOST") })},

		{"redis without a password", "redis requires the password its clients have",
			edit("redis", func(s *types.ServiceConfig) { s.Command = nil })},
		{"redis with a password of its own", "redis requires the password its clients have",
			edit("redis", func(s *types.ServiceConfig) {
				s.Command = types.ShellCommand{"redis-server", "--requirepass", "literal"}
			})},
		{"a redis health check without the password", "redis requires the password its clients have",
			edit("redis", unsetEnv("REDISCLI_AUTH"))},
		{"an edge without the redis password", "redis requires the password its clients have",
			edit("edge2", unsetEnv("PHONESHOP_REDIS_PASSWORD"))},
		{"a node with another redis password", "redis requires the password its clients have",
			edit("node1", setEnv("PHONESHOP_REDIS_PASSWORD", "guess"))},

		{"a node connecting as root", "the shop runs as the MySQL user that only reads and writes rows",
			edit("node1", setEnv("PHONESHOP_MYSQL_DSN", "root:"+secrets["MYSQL_ROOT_PASSWORD"]+"@tcp(mysql:3306)/phoneshop"))},
		{"the mailer connecting as the migration user", "the shop runs as the MySQL user that only reads and writes rows",
			edit("mailer", setEnv("PHONESHOP_MYSQL_DSN", "phoneshop_migrate:"+secrets["MYSQL_MIGRATE_PASSWORD"]+"@tcp(mysql:3306)/phoneshop"))},
		{"an edge with a password in its DSN", "the shop runs as the MySQL user that only reads and writes rows",
			edit("edge1", setEnv("PHONESHOP_MYSQL_DSN", "phoneshop:phoneshop@tcp(mysql:3306)/phoneshop"))},
		{"a node that migrates at start", "the shop runs as the MySQL user that only reads and writes rows",
			edit("node2", setEnv("PHONESHOP_MYSQL_MIGRATE", "true"))},
		{"an edge that leaves migrating at its default", "the shop runs as the MySQL user that only reads and writes rows",
			edit("edge2", unsetEnv("PHONESHOP_MYSQL_MIGRATE"))},
		{"a mailer without a DSN", "the shop runs as the MySQL user that only reads and writes rows",
			edit("mailer", unsetEnv("PHONESHOP_MYSQL_DSN"))},
		{"an app user that is the migration user", "the shop runs as the MySQL user that only reads and writes rows",
			edit("mysql", setEnv("APP_USER", "phoneshop_migrate"))},
		{"a new service connecting as root", "the shop runs as the MySQL user that only reads and writes rows",
			func(p *types.Project) {
				s := p.Services["consul"]
				s.Environment = types.MappingWithEquals{}
				setEnv("PHONESHOP_MYSQL_DSN", "root:x@tcp(mysql:3306)/phoneshop")(&s)
				p.Services["backup"] = s
			}},

		{"no migrate service", "only the migrate service changes the schema",
			func(p *types.Project) { delete(p.Services, "migrate") }},
		{"a migration as root", "only the migrate service changes the schema",
			edit("migrate", setEnv("PHONESHOP_MYSQL_DSN", "root:"+secrets["MYSQL_ROOT_PASSWORD"]+"@tcp(mysql:3306)/phoneshop"))},
		{"a migration as the row-only user", "only the migrate service changes the schema",
			edit("migrate", setEnv("PHONESHOP_MYSQL_DSN", appDSN))},
		{"a migration restarted after it succeeds", "only the migrate service changes the schema",
			edit("migrate", func(s *types.ServiceConfig) { s.Restart = types.RestartPolicyUnlessStopped })},
		{"a migration before mysql is healthy", "only the migrate service changes the schema",
			edit("migrate", dependOn("mysql", ""))},
		{"the migration user as root", "only the migrate service changes the schema",
			edit("mysql", unsetEnv("MYSQL_USER"))},

		{"a node that does not wait for the migration", "the shop's processes wait for the migration",
			edit("node3", dependOn("migrate", ""))},
		{"the mailer waiting only for the migration to start", "the shop's processes wait for the migration",
			edit("mailer", dependOn("migrate", types.ServiceConditionStarted))},

		{"mysql without its init scripts", "mysql makes the row-only user on its first start",
			edit("mysql", func(s *types.ServiceConfig) {
				s.Volumes = slices.DeleteFunc(slices.Clone(s.Volumes), func(v types.ServiceVolumeConfig) bool { return v.Target == mysqlInitTarget })
			})},
		{"mysql's init scripts from elsewhere", "mysql makes the row-only user on its first start",
			edit("mysql", func(s *types.ServiceConfig) {
				s.Volumes = slices.Clone(s.Volumes)
				for i := range s.Volumes {
					if s.Volumes[i].Target == mysqlInitTarget {
						s.Volumes[i].Source = "/tmp"
					}
				}
			})},

		{"rabbitmq with its guest user", "rabbitmq has the shop's own user, not guest",
			edit("rabbitmq", func(s *types.ServiceConfig) { s.Environment = nil })},
		{"a node connecting to rabbitmq as guest", "rabbitmq has the shop's own user, not guest",
			edit("node1", setEnv("PHONESHOP_RABBITMQ_URL", "amqp://guest:guest@rabbitmq:5672/"))},
		{"the mailer with another rabbitmq password", "rabbitmq has the shop's own user, not guest",
			edit("mailer", setEnv("PHONESHOP_RABBITMQ_URL", "amqp://phoneshop:guess@rabbitmq:5672/"))},
		{"an edge without the broker", "edges reach the mail queues (the ops mail view)",
			edit("edge2", setEnv("PHONESHOP_RABBITMQ_URL", ""))},

		{"mailpit's inbox on every interface", "only haproxy publishes beyond this host",
			edit("mailpit", publishOn("", 8025))},
		{"mysql published on the network", "only haproxy publishes beyond this host",
			edit("mysql", publishOn("0.0.0.0", 3306))},
		{"mailpit's inbox not published", "mailpit's inbox is on localhost",
			edit("mailpit", func(s *types.ServiceConfig) { s.Ports = nil })},
		{"consul published on this host", "consul, without ACLs, publishes nothing",
			edit("consul", publishOn("127.0.0.1", 8500))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := checkNamed(t, tt.check)
			p := loadProject(t)
			if problems := c(t, p); len(problems) > 0 {
				t.Fatalf("check %q fails before the change: %v", tt.check, problems)
			}
			tt.mutate(p)
			if problems := c(t, p); len(problems) == 0 {
				t.Errorf("check %q passes a topology with %s", tt.check, tt.name)
			} else {
				t.Logf("check %q: %v", tt.check, problems)
			}
		})
	}
}

// TestSecretsComeFromTheEnvironment: compose refuses to start without each secret
// (${VAR:?message}): none has a default, none is a literal in the file.
func TestSecretsComeFromTheEnvironment(t *testing.T) {
	for _, problem := range optionalSecrets("../docker-compose.yml") {
		t.Error(problem)
	}
}

// optionalSecrets loads file once without each secret and reports those it loads
// without.
func optionalSecrets(file string) []string {
	var bad []string
	for name := range secrets {
		var env []string
		for _, kv := range composeEnv() {
			if !strings.HasPrefix(kv, name+"=") {
				env = append(env, kv)
			}
		}
		_, err := loadFile(file, env)
		switch {
		case err == nil:
			bad = append(bad, fmt.Sprintf("%s loads without %s: a default or a literal stands in for it", file, name))
		case !strings.Contains(err.Error(), "required variable "+name):
			bad = append(bad, fmt.Sprintf("%s without %s: %v, want a required-variable error", file, name, err))
		}
	}
	return bad
}

// TestSecretsCheckCatchesADefault gives one secret a default in a copy of the file,
// and expects optionalSecrets to object.
func TestSecretsCheckCatchesADefault(t *testing.T) {
	orig, err := os.ReadFile("../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	for name := range secrets {
		t.Run(name, func(t *testing.T) {
			required := "${" + name + ":?"
			if !strings.Contains(string(orig), required) {
				t.Fatalf("docker-compose.yml has no %s...}", required)
			}
			copied := filepath.Join(t.TempDir(), "docker-compose.yml")
			if err := os.WriteFile(copied, []byte(strings.ReplaceAll(string(orig), required, "${"+name+":-")), 0o600); err != nil {
				t.Fatal(err)
			}
			problems := optionalSecrets(copied)
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, "loads without "+name) }) {
				t.Errorf("a default for %s passes: %v", name, problems)
			}
		})
	}
}

// TestAllowedEnvComeFromTheConfigStructs guards the reflection the env checks rely
// on: names come from embedded groups and from the nested Shop struct, per role.
func TestAllowedEnvComeFromTheConfigStructs(t *testing.T) {
	allowed := allowedEnv(t)
	tests := []struct {
		name string
		role string
		key  string
		want bool
	}{
		{"node reads a Stores setting", roleNode, "PHONESHOP_MYSQL_DSN", true},
		{"node reads a nested Shop setting", roleNode, "PHONESHOP_RESERVATION_TTL", true},
		{"node reads its own field", roleNode, "PHONESHOP_SHUTDOWN_TIMEOUT", true},
		{"node reads its health address", roleNode, "PHONESHOP_HEALTH_ADDR", true},
		{"node does not read the HTTP address", roleNode, "PHONESHOP_HTTP_ADDR", false},
		{"node does not read admin credentials", roleNode, "PHONESHOP_ADMIN_EMAIL", false},
		{"edge reads the HTTP address", roleEdge, "PHONESHOP_HTTP_ADDR", true},
		{"edge reads admin credentials", roleEdge, "PHONESHOP_ADMIN_PASSWORD", true},
		{"edge reads a nested Shop setting", roleEdge, "PHONESHOP_MAINTENANCE_MODE", true},
		{"edge reads Consul settings", roleEdge, "PHONESHOP_CONSUL_ADDR", true},
		{"edge reads its health and metrics address", roleEdge, "PHONESHOP_HEALTH_ADDR", true},
		{"edge reads its trusted proxies", roleEdge, "PHONESHOP_TRUSTED_PROXIES", true},
		{"node does not read trusted proxies", roleNode, "PHONESHOP_TRUSTED_PROXIES", false},
		{"dev-only data directory is no role's", roleEdge, "PHONESHOP_DATA_DIR", false},
		{"node reads the broker", roleNode, "PHONESHOP_RABBITMQ_URL", true},
		{"mailer reads the SMTP host", roleMailer, "PHONESHOP_SMTP_HOST", true},
		{"mailer reads the unsubscribe secret", roleMailer, "PHONESHOP_UNSUBSCRIBE_SECRET", true},
		{"edge reads the broker (the mail queues' ops view)", roleEdge, "PHONESHOP_RABBITMQ_URL", true},
		{"edge does not read the SMTP host", roleEdge, "PHONESHOP_SMTP_HOST", false},
		{"the conf field name is not an env name", roleNode, "PHONESHOP_SHOP_RESERVATION_TTL", false},
		{"node reads whether to migrate", roleNode, "PHONESHOP_MYSQL_MIGRATE", true},
		{"mailer reads whether to migrate", roleMailer, "PHONESHOP_MYSQL_MIGRATE", true},
		{"migrate reads the DSN", roleMigrate, "PHONESHOP_MYSQL_DSN", true},
		{"migrate has no setting to skip itself", roleMigrate, "PHONESHOP_MYSQL_MIGRATE", false},
		{"edge reads the cluster TLS files", roleEdge, "PHONESHOP_CLUSTER_TLS_CERT", true},
		{"node reads the cluster TLS name", roleNode, "PHONESHOP_CLUSTER_TLS_NAME", true},
		{"mailer has no cluster TLS", roleMailer, "PHONESHOP_CLUSTER_TLS_CA", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := allowed[tt.role][tt.key]; got != tt.want {
				t.Errorf("%s allows %s = %v, want %v", tt.role, tt.key, got, tt.want)
			}
		})
	}
}
