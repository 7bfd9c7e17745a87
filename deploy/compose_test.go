package deploy_test

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"phoneshop/config"
)

// The roles a phoneshop service runs, told apart by the service's command.
const (
	roleNode   = "node"
	roleEdge   = "edge"
	roleMailer = "mailer"
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

// composeEnv stands in for the operator's shell during ${...} interpolation, so the
// test does not depend on the environment it runs in.
var composeEnv = []string{
	"MYSQL_ROOT_PASSWORD=secret",
	"PHONESHOP_ADMIN_EMAIL=admin@example.com",
	"PHONESHOP_ADMIN_PASSWORD=admin-password",
	"PHONESHOP_UNSUBSCRIBE_SECRET=0123456789abcdef0123456789abcdef",
	"PHONESHOP_LOG_LEVEL=debug",
}

func loadProject(t *testing.T) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{"../docker-compose.yml"},
		cli.WithWorkingDirectory(".."),
		cli.WithEnv(composeEnv),
		cli.WithInterpolation(true),
	)
	if err != nil {
		t.Fatalf("compose options: %v", err)
	}
	p, err := cli.ProjectFromOptions(context.Background(), opts)
	if err != nil {
		t.Fatalf("load docker-compose.yml: %v", err)
	}
	return p
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
	node := envNames(t, config.Node{})
	return map[string]map[string]bool{roleNode: node, roleEdge: envNames(t, config.Edge{}), roleMailer: envNames(t, config.Mailer{})}
}

// role is the phoneshop role a service runs ("" for any other service).
func role(s types.ServiceConfig) string {
	if len(s.Command) == 0 {
		return ""
	}
	switch s.Command[0] {
	case roleNode, roleEdge, roleMailer:
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
	{"edge port is published by haproxy only", checkEdgePort},
	{"edges publish nothing", checkEdgesUnpublished},
	{"every node and edge has a health check", checkHealthChecks},
	{"health checks probe the role's own listener", checkProbeTargets},
	{"nodes and edges wait for healthy stores", checkStoreDependencies},
	{"edges wait for healthy nodes", checkEdgeDependencies},
	{"a service waited on as healthy has a health check", checkWaitedOnHaveHealthChecks},
	{"exactly 3 nodes and 2 edges", checkCounts},
	{"cluster hosts are dialable addresses", checkClusterHosts},
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
					bad = append(bad, fmt.Sprintf("%s: %s is not read by config.%s", name, key, map[string]string{roleNode: "Node", roleEdge: "Edge", roleMailer: "Mailer"}[r]))
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
		{"edge does not read the broker", roleEdge, "PHONESHOP_RABBITMQ_URL", false},
		{"the conf field name is not an env name", roleNode, "PHONESHOP_SHOP_RESERVATION_TTL", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := allowed[tt.role][tt.key]; got != tt.want {
				t.Errorf("%s allows %s = %v, want %v", tt.role, tt.key, got, tt.want)
			}
		})
	}
}
