package loadgen

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/google/pprof/profile"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func TestPackageGroup(t *testing.T) {
	tests := []struct{ function, want string }{
		{"phoneshop/persistence/sqlstore.(*committer).commit", "phoneshop/persistence/sqlstore"},
		{"phoneshop/actors/order.(*grain).save.func1", "phoneshop/actors/order"},
		{"github.com/asynkron/protoactor-go/actor.(*defaultMailbox).run", "github.com/asynkron/protoactor-go"},
		{"github.com/go-sql-driver/mysql.(*mysqlConn).writePacket", "github.com/go-sql-driver/mysql"},
		{"github.com/gofiber/fiber/v2.(*App).handler", "github.com/gofiber/fiber"},
		{"google.golang.org/protobuf/proto.Marshal", "google.golang.org/protobuf"},
		{"golang.org/x/crypto/argon2.processBlocks", "golang.org/x/crypto"},
		{"internal/runtime/syscall/linux.Syscall6", "syscall"},
		{"syscall.RawSyscall6", "syscall"},
		{"runtime.mallocgc", "runtime"},
		{"internal/runtime/maps.(*Map).getWithKey", "runtime"},
		{"internal/poll.(*FD).Read", "internal/poll"},
		{"net/http.(*conn).serve", "net"},
		{"encoding/json.Marshal", "encoding"},
		// Type parameters may name packages of their own; the function's comes first.
		{"github.com/a/b/c.Map[go.shape.string,github.com/x/y.T].Get", "github.com/a/b"},
		{"aeshashbody", "runtime"},
		{"[unknown]", "other"},
	}
	for _, tt := range tests {
		if got := PackageGroup(tt.function); got != tt.want {
			t.Errorf("PackageGroup(%q) = %q, want %q", tt.function, got, tt.want)
		}
	}
}

// testProfile builds a CPU profile from stacks, leaf first, each with its CPU time
// in milliseconds. A stack entry "a+b" is one location where a was inlined into b.
func testProfile(stacks map[string]int64) *profile.Profile {
	p := &profile.Profile{
		SampleType:    []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		DurationNanos: int64(time.Second),
	}
	funcs := map[string]*profile.Function{}
	fn := func(name string) *profile.Function {
		if f, ok := funcs[name]; ok {
			return f
		}
		f := &profile.Function{ID: uint64(len(funcs) + 1), Name: name}
		funcs[name] = f
		p.Function = append(p.Function, f)
		return f
	}
	for stack, ms := range stacks {
		var locs []*profile.Location
		for _, frame := range strings.Split(stack, ";") {
			loc := &profile.Location{ID: uint64(len(p.Location) + 1)}
			for _, name := range strings.Split(frame, "+") {
				loc.Line = append(loc.Line, profile.Line{Function: fn(name)})
			}
			p.Location = append(p.Location, loc)
			locs = append(locs, loc)
		}
		p.Sample = append(p.Sample, &profile.Sample{Location: locs, Value: []int64{ms / 10, ms * int64(time.Millisecond)}})
	}
	return p
}

func TestSummarizeProfile_flat_and_cumulative_shares(t *testing.T) {
	p := testProfile(map[string]int64{
		// 600 ms in a syscall under the committer, 200 ms in the committer itself
		// (an inlined helper), 200 ms of recursion in a mailbox.
		"internal/runtime/syscall/linux.Syscall6;phoneshop/persistence/sqlstore.(*committer).commit;runtime.goexit": 600,
		"phoneshop/persistence/sqlstore.encode+phoneshop/persistence/sqlstore.(*committer).commit;runtime.goexit":   200,
		"github.com/asynkron/protoactor-go/actor.run;github.com/asynkron/protoactor-go/actor.run;runtime.goexit":    200,
	})
	s := SummarizeProfile(p, 3)
	if s.CPUSeconds != 1 || s.Seconds != 1 {
		t.Errorf("CPU %.2f s over %.2f s, want 1 over 1", s.CPUSeconds, s.Seconds)
	}
	approx := cmpopts.EquateApprox(0, 1e-9)
	wantFlat := []ProfileShare{
		{Name: "internal/runtime/syscall/linux.Syscall6", Flat: 0.6, Cum: 0.6},
		{Name: "github.com/asynkron/protoactor-go/actor.run", Flat: 0.2, Cum: 0.2},
		{Name: "phoneshop/persistence/sqlstore.encode", Flat: 0.2, Cum: 0.2},
	}
	if diff := cmp.Diff(wantFlat, s.ByFlat, approx); diff != "" {
		t.Errorf("by flat (-want +got):\n%s", diff)
	}
	if s.ByCum[0].Name != "phoneshop/persistence/sqlstore.(*committer).commit" || math.Abs(s.ByCum[0].Cum-0.8) > 1e-9 {
		t.Errorf("top by cum = %+v, want the committer at 0.8", s.ByCum[0])
	}
	wantPackages := []ProfileShare{
		{Name: "syscall", Flat: 0.6, Cum: 0.6},
		{Name: "phoneshop/persistence/sqlstore", Flat: 0.2, Cum: 0.8},
		{Name: "github.com/asynkron/protoactor-go", Flat: 0.2, Cum: 0.2},
	}
	// runtime.goexit, at the root of every stack, is no one's time.
	if diff := cmp.Diff(wantPackages, s.Packages, approx); diff != "" {
		t.Errorf("packages (-want +got):\n%s", diff)
	}
}

// TestProfiler_keeps_what_ran_within_the_phase profiles this process through
// net/http/pprof while it spins for longer than a chunk.
func TestProfiler_keeps_what_ran_within_the_phase(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	prof := StartProfiler(context.Background(), srv.Client(), srv.URL, 5)
	// Long enough for a chunk to end within it on a busy machine, too short for
	// three: the chunk in flight at the end is dropped.
	const phase = 2500 * time.Millisecond
	spinUntil(time.Now().Add(phase))
	p, covered, note, err := prof.Stop(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Sample) == 0 || covered < time.Second || covered > phase || note != "" {
		t.Errorf("profile of %d samples over %s (note %q), want whole chunks within the %s phase", len(p.Sample), covered, note, phase)
	}
	path := filepath.Join(t.TempDir(), "tmp", "cpu.pprof")
	if err := WriteProfile(path, p); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := profile.Parse(f); err != nil {
		t.Errorf("the written profile does not parse: %v", err)
	}
}

// TestProfiler_phase_shorter_than_a_chunk: the one chunk is kept and the summary
// says that it runs past the phase.
func TestProfiler_phase_shorter_than_a_chunk(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	prof := StartProfiler(context.Background(), srv.Client(), srv.URL, 5)
	spinUntil(time.Now().Add(200 * time.Millisecond))
	_, covered, note, err := prof.Stop(time.Now())
	if err != nil || covered < time.Second || !strings.Contains(note, "runs past it") {
		t.Errorf("covered %s, note %q, err %v", covered, note, err)
	}
}

func TestProfiler_reports_an_endpoint_that_fails(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	prof := StartProfiler(context.Background(), srv.Client(), srv.URL, 5)
	time.Sleep(300 * time.Millisecond) // for the first request to fail
	if _, _, _, err := prof.Stop(time.Now()); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("Stop = %v, want the 404", err)
	}
}

func spinUntil(deadline time.Time) {
	for x := 0; time.Now().Before(deadline); x++ {
		_ = math.Sqrt(float64(x))
	}
}

func TestCPU_of_this_process_and_the_machine(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc on this system")
	}
	procs := []Process{Self("me"), {Name: "ghost", Missing: "not found"}, ProcessOf("nobody", 0)}
	start := SampleCPU(procs)
	spinUntil(time.Now().Add(300 * time.Millisecond))
	u := CPUBetween("spin", start, SampleCPU(procs))
	me := u.Processes[0]
	if me.PID != os.Getpid() || me.Missing != "" || me.CPUSeconds <= 0 || me.Cores <= 0 {
		t.Errorf("this process: %+v over %.2f s", me, u.Seconds)
	}
	if u.Processes[1].Missing != "not found" || u.Processes[2].Missing != "pid not given" {
		t.Errorf("missing processes: %+v", u.Processes[1:])
	}
	if u.Machine.Missing != "" || u.Machine.CPUSeconds < me.CPUSeconds-0.02 || u.CPUs < 1 {
		t.Errorf("machine %+v (%d CPUs) used less than this process %+v", u.Machine, u.CPUs, me)
	}
}

func TestFindProcess(t *testing.T) {
	comm, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Skip("no /proc on this system")
	}
	if p := FindProcess("me", strings.TrimSpace(string(comm))); p.PID == 0 || p.Missing != "" {
		t.Errorf("FindProcess(own command) = %+v", p)
	}
	if p := FindProcess("none", "no-such-command-here"); p.PID != 0 || p.Missing == "" {
		t.Errorf("FindProcess(no such command) = %+v", p)
	}
	if p := ProcessOf("me", os.Getpid(), "not-my-command"); p.PID != 0 || !strings.Contains(p.Missing, "not [not-my-command]") {
		t.Errorf("ProcessOf(own pid, another command) = %+v", p)
	}
}

func TestScrapeHistogram(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "test_batch_writes", Buckets: prometheus.ExponentialBuckets(1, 2, 4)})
	reg.MustRegister(h)
	for _, v := range []float64{1, 3, 8} {
		h.Observe(v)
	}
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	got, err := ScrapeHistogram(context.Background(), srv.Client(), srv.URL, "test_batch_writes")
	if err != nil || got != (Histogram{Sum: 12, Count: 3}) {
		t.Errorf("ScrapeHistogram = %+v, %v; want sum 12 of 3", got, err)
	}
	if _, err := ScrapeHistogram(context.Background(), srv.Client(), srv.URL, "test_missing"); err == nil {
		t.Error("a missing histogram: no error")
	}
}

func TestReport_markdown_and_json_of_the_measurements(t *testing.T) {
	r := sampleReport()
	r.Skipped = []string{"the durable Redis peer: no --durable-redis-addr"}
	r.Sweep = []SweepPoint{
		{Design: "flash sale", Concurrency: 64, Orders: 2000, OrdersPerSecond: 900, P99: 80 * time.Millisecond, ChecksOK: true},
		{Design: "flash sale", Concurrency: 16, Orders: 2000, OrdersPerSecond: 400, P99: 40 * time.Millisecond, ChecksOK: true},
		{Design: "classic checkout", Concurrency: 16, Orders: 2000, OrdersPerSecond: 800, P99: 30 * time.Millisecond, ChecksOK: false},
	}
	r.CPU = &CPUUsage{Phase: "flash", Seconds: 4, CPUs: 2,
		Processes: []ProcessCPU{{Name: "the shop", PID: 42, CPUSeconds: 3, Cores: 0.75}, {Name: "mariadbd", Missing: "not found"}},
		Machine:   ProcessCPU{Name: "all processes on the machine", CPUSeconds: 7.6, Cores: 1.9}}
	r.Profile = &ProfileSummary{Phase: "flash", Path: "tmp/bench/flash-cpu.pprof", Seconds: 3, CPUSeconds: 2.4,
		ByFlat:   []ProfileShare{{Name: "runtime.mallocgc", Flat: 0.1, Cum: 0.2}},
		ByCum:    []ProfileShare{{Name: "phoneshop/persistence/sqlstore.(*committer).commit", Flat: 0.01, Cum: 0.37}},
		Packages: []ProfileShare{{Name: "syscall", Flat: 0.4, Cum: 0.4}, {Name: "tiny", Flat: 0.001, Cum: 0.01}}}
	r.Costs = &OrderCosts{Phases: []OrderCost{
		{Design: "flash sale", Orders: 1000, Seconds: 2, Note: "2.0 writes per transaction",
			Counters: []Counter{{Name: "grain snapshot writes", Source: "the shop's /metrics", Total: 5000}, {Name: "Questions", Source: "status", Total: 12000}}},
		{Design: "classic", Orders: 500, Seconds: 1, Counters: []Counter{{Name: "Questions", Source: "status", Total: 2000}}, Missing: []string{"Innodb_os_log_fsyncs"}},
	}, Notes: []string{"server-wide"}}
	md := r.Markdown()
	for _, want := range []string{
		"## Not measured in this run\n\n- the durable Redis peer: no --durable-redis-addr",
		"| shoppers | flash sale orders/s | p99 | classic checkout orders/s | p99 |",
		"| 16 | 400 | 40.00 ms | 800 ✗ checks | 30.00 ms |",
		"| 64 | 900 | 80.00 ms | — | — |",
		"| the shop | 42 | 3.00 | 0.75 |",
		"| mariadbd | — | not found | — |",
		"| all processes on the machine | — | 7.60 | 1.90 of 2 |",
		"| syscall | 40.0% | 40.0% |",
		"1 smaller groups are left out",
		"| runtime.mallocgc | 10.0% | 20.0% |",
		"| phoneshop/persistence/sqlstore.(*committer).commit | 37.0% | 1.0% |",
		"| counter | source | flash sale | classic |",
		"| grain snapshot writes | the shop's /metrics | 5.00 | — |",
		"| Questions | status | 12.00 | 4.00 |",
		"- flash sale: 2.0 writes per transaction",
		"- Not counted, this server has no such counter: Innodb_os_log_fsyncs.",
		"- server-wide",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "| tiny |") {
		t.Error("markdown lists a package group under both thresholds")
	}
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"p99_ms":80`) {
		t.Errorf("sweep p99 not in float milliseconds: %s", data)
	}
	var back Report
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, back, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}
