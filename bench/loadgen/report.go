package loadgen

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Report is the record of a benchmark: where it ran, what ran, and how the
// figures compare with the goals.
type Report struct {
	Title   string  `json:"title"`
	Machine Machine `json:"machine"`
	// Skipped names what this run did not measure, and why: a report never drops a
	// figure without saying so.
	Skipped []string `json:"skipped,omitempty"`
	Runs    []Run    `json:"runs"`
	Targets []Target `json:"targets"`
	// Sweep is orders/s and p99 of each design at each concurrency.
	Sweep []SweepPoint `json:"sweep,omitempty"`
	// CPU, Profile and Costs are what one phase cost the machine.
	CPU     *CPUUsage       `json:"cpu,omitempty"`
	Profile *ProfileSummary `json:"profile,omitempty"`
	Costs   *OrderCosts     `json:"costs,omitempty"`
	Notes   []string        `json:"notes"`
}

// SweepPoint is one design's checkout at one concurrency.
type SweepPoint struct {
	Design          string        `json:"design"`
	Concurrency     int           `json:"concurrency"`
	Orders          int64         `json:"orders"`
	OrdersPerSecond float64       `json:"orders_per_second"`
	P99             time.Duration `json:"-"` // in JSON as p99_ms, float milliseconds
	ChecksOK        bool          `json:"checks_ok"`
}

// OrderCosts compares what a confirmed order costs in writes and statements, one
// phase per design; Notes say what the counters include.
type OrderCosts struct {
	Phases []OrderCost `json:"phases"`
	Notes  []string    `json:"notes"`
}

// Machine describes the host a benchmark ran on; figures mean little without it.
type Machine struct {
	CPUs      int               `json:"cpus"`
	CPUModel  string            `json:"cpu_model"`
	MemoryGiB float64           `json:"memory_gib"`
	OS        string            `json:"os"`
	GoVersion string            `json:"go_version"`
	Extra     map[string]string `json:"extra,omitempty"`
}

// Run is one measured run of a scenario.
type Run struct {
	Name        string  `json:"name"`
	Scenario    string  `json:"scenario"`
	Mode        string  `json:"mode"` // "closed" or "open"
	Concurrency int     `json:"concurrency"`
	Rate        float64 `json:"rate"`
	Summary     Summary `json:"summary"`
	Checks      []Check `json:"checks"`
}

// Check is a correctness assertion about a run, such as "no item oversold".
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// Target compares a measured figure with its goal. Ratio is the figure
// divided by the goal, as the caller judges it; Met is the verdict.
type Target struct {
	Name   string  `json:"name"`
	Figure string  `json:"figure"`
	Goal   string  `json:"goal"`
	Ratio  float64 `json:"ratio"`
	Met    bool    `json:"met"`
	Detail string  `json:"detail"`
}

// DescribeMachine describes the host this process runs on. What cannot be
// read (on a system without /proc) is left empty rather than failing.
func DescribeMachine() Machine {
	m := Machine{
		CPUs:      runtime.NumCPU(),
		CPUModel:  procField("/proc/cpuinfo", "model name"),
		GoVersion: runtime.Version(),
		Extra: map[string]string{
			"gomaxprocs": strconv.Itoa(runtime.GOMAXPROCS(0)),
			"arch":       runtime.GOARCH,
		},
	}
	if mem := procField("/proc/meminfo", "MemTotal"); mem != "" {
		// MemTotal is given in kB: "16318480 kB".
		if kb, err := strconv.ParseFloat(strings.Fields(mem)[0], 64); err == nil {
			m.MemoryGiB = float64(int(kb/(1<<20)*10+0.5)) / 10
		}
	}
	m.OS = runtime.GOOS
	if release := readTrimmed("/proc/sys/kernel/osrelease"); release != "" {
		m.OS += " " + release
		if name := readTrimmed("/proc/sys/kernel/ostype"); name != "" {
			m.Extra["kernel"] = name + " " + release
		}
	}
	if v := readTrimmed("/proc/sys/kernel/version"); v != "" {
		m.Extra["kernel_version"] = v
	}
	return m
}

// procField returns the value of the first "key : value" line of a /proc file.
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func readTrimmed(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// WriteJSON writes the report as indented JSON, creating path's directory.
func (r Report) WriteJSON(path string) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("loadgen: encode report: %w", err)
	}
	return writeFile(path, append(data, '\n'))
}

// WriteMarkdown writes Markdown() to path, creating its directory.
func (r Report) WriteMarkdown(path string) error {
	return writeFile(path, []byte(r.Markdown()))
}

func writeFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("loadgen: write report: %w", err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("loadgen: write report: %w", err)
	}
	return nil
}

// Markdown renders the report for humans: machine, targets, runs, errors by
// code, checks and notes.
func (r Report) Markdown() string {
	var b strings.Builder
	title := r.Title
	if title == "" {
		title = "Benchmark report"
	}
	fmt.Fprintf(&b, "# %s\n\n", cell(title))

	m := r.Machine
	b.WriteString("## Machine\n\n")
	fmt.Fprintf(&b, "- CPUs: %d\n", m.CPUs)
	fmt.Fprintf(&b, "- CPU model: %s\n", orUnknown(m.CPUModel))
	fmt.Fprintf(&b, "- Memory: %.1f GiB\n", m.MemoryGiB)
	fmt.Fprintf(&b, "- OS: %s\n", orUnknown(m.OS))
	fmt.Fprintf(&b, "- Go: %s\n", orUnknown(m.GoVersion))
	for _, k := range sortedKeys(m.Extra) {
		fmt.Fprintf(&b, "- %s: %s\n", k, m.Extra[k])
	}
	b.WriteString("\n")

	if len(r.Skipped) > 0 {
		b.WriteString("## Not measured in this run\n\n")
		for _, sk := range r.Skipped {
			fmt.Fprintf(&b, "- %s\n", sk)
		}
		b.WriteString("\n")
	}

	if len(r.Targets) > 0 {
		b.WriteString("## Targets\n\n")
		b.WriteString("| target | figure | goal | ratio | met |\n")
		b.WriteString("|---|---|---|---:|:---:|\n")
		for _, t := range r.Targets {
			fmt.Fprintf(&b, "| %s | %s | %s | %.2f | %s |\n",
				cell(t.Name), cell(t.Figure), cell(t.Goal), t.Ratio, mark(t.Met))
		}
		var details []Target
		for _, t := range r.Targets {
			if t.Detail != "" {
				details = append(details, t)
			}
		}
		if len(details) > 0 {
			b.WriteString("\n")
			for _, t := range details {
				fmt.Fprintf(&b, "- %s: %s\n", t.Name, t.Detail)
			}
		}
		b.WriteString("\n")
	}

	writeSweep(&b, r.Sweep)
	writeCPU(&b, r.CPU)
	writeProfile(&b, r.Profile)
	writeCosts(&b, r.Costs)

	if len(r.Runs) > 0 {
		b.WriteString("## Runs\n\n")
		b.WriteString("| run | mode | conc/rate | ops/s | p50 | p95 | p99 | max | errors |\n")
		b.WriteString("|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, run := range r.Runs {
			t := run.Summary.Total
			fmt.Fprintf(&b, "| %s | %s | %s | %.1f | %s | %s | %s | %s | %s |\n",
				cell(run.Name), cell(run.Mode), load(run), t.PerSecond,
				ms(t.P50), ms(t.P95), ms(t.P99), ms(t.Max), errorShare(t))
		}
		b.WriteString("\n")
		writeOperations(&b, r.Runs)
		writeErrors(&b, r.Runs)
		writeChecks(&b, r.Runs)
	}

	if len(r.Notes) > 0 {
		b.WriteString("## Notes\n\n")
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// writeSweep puts every design's orders/s and p99 side by side, one row per
// concurrency, so the report shows where each design stops scaling.
func writeSweep(b *strings.Builder, points []SweepPoint) {
	if len(points) == 0 {
		return
	}
	var designs []string
	var levels []int
	at := map[string]map[int]SweepPoint{}
	for _, p := range points {
		if at[p.Design] == nil {
			designs = append(designs, p.Design)
			at[p.Design] = map[int]SweepPoint{}
		}
		if !slices.Contains(levels, p.Concurrency) {
			levels = append(levels, p.Concurrency)
		}
		at[p.Design][p.Concurrency] = p
	}
	slices.Sort(levels)
	b.WriteString("## Where each design bends: orders/s and p99 by concurrent shoppers\n\n")
	b.WriteString("| shoppers |")
	for _, d := range designs {
		fmt.Fprintf(b, " %s orders/s | p99 |", cell(d))
	}
	b.WriteString("\n|---:|")
	b.WriteString(strings.Repeat("---:|---:|", len(designs)))
	b.WriteString("\n")
	for _, c := range levels {
		fmt.Fprintf(b, "| %d |", c)
		for _, d := range designs {
			p, ok := at[d][c]
			switch {
			case !ok:
				b.WriteString(" — | — |")
			default:
				flag := ""
				if !p.ChecksOK {
					flag = " ✗ checks"
				}
				fmt.Fprintf(b, " %.0f%s | %s |", p.OrdersPerSecond, flag, ms(p.P99))
			}
		}
		b.WriteString("\n")
	}
	b.WriteString("\nEach cell is a run of its own: fresh shoppers with filled carts (or fresh baseline orders), stock that lasts, closed loop at that many concurrent shoppers; its checks are under Checks.\n\n")
}

func writeCPU(b *strings.Builder, u *CPUUsage) {
	if u == nil {
		return
	}
	fmt.Fprintf(b, "## CPU per process: %s (%.1f s)\n\n", cell(u.Phase), u.Seconds)
	b.WriteString("| process | pid | CPU seconds | cores |\n|---|---:|---:|---:|\n")
	for _, p := range append(slices.Clone(u.Processes), u.Machine) {
		pid := "—"
		if p.PID != 0 {
			pid = strconv.Itoa(p.PID)
		}
		if p.Missing != "" {
			fmt.Fprintf(b, "| %s | %s | %s | — |\n", cell(p.Name), pid, cell(p.Missing))
			continue
		}
		cores := fmt.Sprintf("%.2f", p.Cores)
		if p.Name == u.Machine.Name && u.CPUs > 0 {
			cores += fmt.Sprintf(" of %d", u.CPUs)
		}
		fmt.Fprintf(b, "| %s | %s | %.2f | %s |\n", cell(p.Name), pid, p.CPUSeconds, cores)
	}
	b.WriteString("\nutime + stime from /proc/<pid>/stat at the first checkout and after the last answer; cores = CPU seconds / wall seconds.\n\n")
}

// A package group the Markdown lists has at least one of these shares; the JSON
// has them all.
const (
	minPackageFlat = 0.005
	minPackageCum  = 0.05
)

func writeProfile(b *strings.Builder, p *ProfileSummary) {
	if p == nil {
		return
	}
	fmt.Fprintf(b, "## Where the shop's CPU went: %s\n\n", cell(p.Phase))
	fmt.Fprintf(b, "CPU profile of %.1f s of the phase: %.2f CPU seconds (%.2f cores), written to `%s` (`go tool pprof -top %s`).",
		p.Seconds, p.CPUSeconds, p.CPUSeconds/max(p.Seconds, 1e-9), p.Path, p.Path)
	if p.Note != "" {
		fmt.Fprintf(b, " Note: %s.", p.Note)
	}
	b.WriteString(" Flat is the share of the CPU in the function's (or group's) own code, cum in it and everything it called.\n\n")
	b.WriteString("### By package\n\n| package | flat | cum |\n|---|---:|---:|\n")
	left := 0
	for _, s := range p.Packages {
		if s.Flat < minPackageFlat && s.Cum < minPackageCum {
			left++
			continue
		}
		fmt.Fprintf(b, "| %s | %s | %s |\n", cell(s.Name), percent(s.Flat), percent(s.Cum))
	}
	if left > 0 {
		fmt.Fprintf(b, "\n%d smaller groups are left out here (all are in the JSON report).\n", left)
	}
	b.WriteString("\n### Top functions by flat share\n\n| function | flat | cum |\n|---|---:|---:|\n")
	for _, s := range p.ByFlat {
		fmt.Fprintf(b, "| %s | %s | %s |\n", cell(s.Name), percent(s.Flat), percent(s.Cum))
	}
	b.WriteString("\n### Top functions by cumulative share\n\n| function | cum | flat |\n|---|---:|---:|\n")
	for _, s := range p.ByCum {
		fmt.Fprintf(b, "| %s | %s | %s |\n", cell(s.Name), percent(s.Cum), percent(s.Flat))
	}
	b.WriteString("\n")
}

// writeCosts is one table of counters per confirmed order, a column per design; a
// counter a design's phase did not read shows as a dash.
func writeCosts(b *strings.Builder, c *OrderCosts) {
	if c == nil || len(c.Phases) == 0 {
		return
	}
	type row struct{ name, source string }
	var rows []row
	for _, ph := range c.Phases {
		for _, k := range ph.Counters {
			if r := (row{k.Name, k.Source}); !slices.Contains(rows, r) {
				rows = append(rows, r)
			}
		}
	}
	b.WriteString("## Writes and statements per confirmed order\n\n| counter | source |")
	for _, ph := range c.Phases {
		fmt.Fprintf(b, " %s |", cell(ph.Design))
	}
	b.WriteString("\n|---|---|" + strings.Repeat("---:|", len(c.Phases)) + "\n| confirmed orders (seconds counted) | loadgen |")
	for _, ph := range c.Phases {
		fmt.Fprintf(b, " %d (%.1f s) |", ph.Orders, ph.Seconds)
	}
	b.WriteString("\n")
	for _, r := range rows {
		fmt.Fprintf(b, "| %s | %s |", cell(r.name), cell(r.source))
		for _, ph := range c.Phases {
			if v, ok := ph.PerOrder(r.name); ok {
				fmt.Fprintf(b, " %.2f |", v)
			} else {
				b.WriteString(" — |")
			}
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
	for _, ph := range c.Phases {
		if ph.Note != "" {
			fmt.Fprintf(b, "- %s: %s\n", ph.Design, ph.Note)
		}
	}
	var missing []string
	for _, ph := range c.Phases {
		for _, m := range ph.Missing {
			if !slices.Contains(missing, m) {
				missing = append(missing, m)
			}
		}
	}
	if len(missing) > 0 {
		fmt.Fprintf(b, "- Not counted, this server has no such counter: %s.\n", strings.Join(missing, ", "))
	}
	for _, n := range c.Notes {
		fmt.Fprintf(b, "- %s\n", n)
	}
	b.WriteString("\n")
}

func percent(f float64) string { return strconv.FormatFloat(100*f, 'f', 1, 64) + "%" }

// writeOperations breaks down the runs that mixed several operations.
func writeOperations(b *strings.Builder, runs []Run) {
	var mixed []Run
	for _, run := range runs {
		if len(run.Summary.Ops) > 1 {
			mixed = append(mixed, run)
		}
	}
	if len(mixed) == 0 {
		return
	}
	b.WriteString("## Operations\n\n")
	for _, run := range mixed {
		fmt.Fprintf(b, "### %s\n\n", cell(run.Name))
		b.WriteString("| op | count | ops/s | p50 | p95 | p99 | max | errors |\n")
		b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, name := range sortedKeys(run.Summary.Ops) {
			op := run.Summary.Ops[name]
			fmt.Fprintf(b, "| %s | %d | %.1f | %s | %s | %s | %s | %s |\n",
				cell(name), op.Count, op.PerSecond, ms(op.P50), ms(op.P95), ms(op.P99), ms(op.Max), errorShare(op))
		}
		b.WriteString("\n")
	}
}

func writeErrors(b *strings.Builder, runs []Run) {
	var failing []Run
	for _, run := range runs {
		if run.Summary.Total.Errors > 0 {
			failing = append(failing, run)
		}
	}
	if len(failing) == 0 {
		return
	}
	b.WriteString("## Errors by code\n\n")
	for _, run := range failing {
		fmt.Fprintf(b, "### %s\n\n", cell(run.Name))
		b.WriteString("| op | code | count |\n|---|---|---:|\n")
		for _, name := range sortedKeys(run.Summary.Ops) {
			op := run.Summary.Ops[name]
			for _, code := range sortedKeys(op.ErrorsByCode) {
				fmt.Fprintf(b, "| %s | %s | %d |\n", cell(name), cell(code), op.ErrorsByCode[code])
			}
		}
		b.WriteString("\n")
	}
}

func writeChecks(b *strings.Builder, runs []Run) {
	var checked []Run
	for _, run := range runs {
		if len(run.Checks) > 0 {
			checked = append(checked, run)
		}
	}
	if len(checked) == 0 {
		return
	}
	b.WriteString("## Checks\n\n")
	for _, run := range checked {
		fmt.Fprintf(b, "### %s\n\n", cell(run.Name))
		for _, c := range run.Checks {
			line := fmt.Sprintf("- %s %s", mark(c.OK), c.Name)
			if c.Detail != "" {
				line += " — " + c.Detail
			}
			b.WriteString(line + "\n")
		}
		b.WriteString("\n")
	}
}

func load(run Run) string {
	if run.Mode == "open" || (run.Concurrency == 0 && run.Rate > 0) {
		return strconv.FormatFloat(run.Rate, 'f', -1, 64) + "/s"
	}
	return strconv.Itoa(run.Concurrency)
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(toMillis(d), 'f', 2, 64) + " ms"
}

func errorShare(o OpSummary) string {
	if o.Count == 0 || o.Errors == 0 {
		return strconv.FormatInt(o.Errors, 10)
	}
	return fmt.Sprintf("%d (%.2f%%)", o.Errors, 100*float64(o.Errors)/float64(o.Count))
}

func mark(ok bool) string {
	if ok {
		return "✓"
	}
	return "✗"
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// cell keeps text from breaking out of a Markdown table cell.
func cell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
