// Package layers holds the test of the module's import directions (README,
// "Layout"): every arrow runs down, and no production code imports a test harness.
package layers

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "phoneshop/"

// rules say, for the packages under a prefix, which of the module's packages they
// must not import (by prefix).
var rules = []struct {
	packages string
	never    []string
	why      string
}{
	{"grain/", []string{""}, "the grain runtime is a leaf: it imports nothing of the shop"},
	{"actors/", []string{"cluster/", "edge", "shop", "persistence/", "config", "cmd/", "internal/"},
		"grains run on grain/ and are hosted by cluster/, which imports them"},
	{"catalog", []string{"actors/", "cluster/", "edge", "shop", "persistence/", "notify/", "internal/"}, "a domain below the stores and the edge"},
	{"account", []string{"actors/", "cluster/", "edge", "shop", "persistence/", "notify/", "internal/"}, "a domain below the stores and the edge"},
	{"persistence/", []string{"cluster/", "edge", "shop", "config", "cmd/"}, "stores implement the ports of the domains and grains below them"},
	{"notify/", []string{"cluster/", "edge", "shop", "persistence/", "cmd/"}, "the outbox, queues and mail sit below the assembly"},
	{"cluster/", []string{"edge", "shop", "persistence/", "cmd/"}, "members host grains; the edge and the shop use them"},
	{"edge", []string{"shop", "persistence/", "cmd/"}, "the edge reads stores through its own interfaces; the shop wires them"},
	{"config", []string{"actors/", "edge", "shop", "persistence/", "cmd/"}, "settings sit below what they configure"},
	{"shop", []string{"cmd/"}, "the binaries run the shop"},
}

// harness packages are for tests only.
func harness(pkg string) bool {
	return strings.HasPrefix(pkg, "internal/") && pkg != "internal/layers"
}

func TestImportsRunDown(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, module+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	checked := 0
	for line := range strings.Lines(string(out)) {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], module)
		for _, imp := range fields[1:] {
			if !strings.HasPrefix(imp, module) {
				continue
			}
			imp = strings.TrimPrefix(imp, module)
			checked++
			if harness(imp) && !harness(pkg) {
				t.Errorf("%s imports the test harness %s: production code imports no test harness", pkg, imp)
			}
			for _, r := range rules {
				if !under(pkg, r.packages) {
					continue
				}
				for _, never := range r.never {
					if under(imp, never) && !under(imp, r.packages) {
						t.Errorf("%s imports %s: %s", pkg, imp, r.why)
					}
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("go list showed no import of the module's own packages: the test reads nothing")
	}
}

// under says whether pkg is the package prefix names or one under it: "edge"
// matches edge and edge/strictjson, "actors/" every grain, "" everything.
func under(pkg, prefix string) bool {
	if prefix == "" || strings.HasSuffix(prefix, "/") {
		return strings.HasPrefix(pkg, prefix)
	}
	return pkg == prefix || strings.HasPrefix(pkg, prefix+"/")
}
