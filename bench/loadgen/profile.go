package loadgen

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/pprof/profile"
)

// ProfileSummary is where a process spent its CPU during a phase, from a CPU
// profile: the heaviest functions and the share of each package group.
type ProfileSummary struct {
	Phase string `json:"phase"`
	// Path is where the raw profile was written (go tool pprof reads it).
	Path string `json:"path"`
	// Seconds is the wall time the profile covers; CPUSeconds the CPU it saw.
	Seconds    float64 `json:"seconds"`
	CPUSeconds float64 `json:"cpu_seconds"`
	// Note says how the profile's window sits in the phase's.
	Note string `json:"note,omitempty"`
	// ByFlat and ByCum are the top functions by their own time and by the time of
	// the stacks they are in.
	ByFlat []ProfileShare `json:"by_flat"`
	ByCum  []ProfileShare `json:"by_cum"`
	// Packages groups every function by package (see PackageGroup), by own time.
	Packages []ProfileShare `json:"packages"`
}

// ProfileShare is one function's or package group's share of the profile's CPU
// time: Flat in its own code, Cum in it or anything it called.
type ProfileShare struct {
	Name string  `json:"name"`
	Flat float64 `json:"flat"`
	Cum  float64 `json:"cum"`
}

// Profiler takes a CPU profile of another process through its net/http/pprof
// endpoint for as long as a phase lasts, which is not known when it starts. It
// asks for profiles of profileChunk each, back to back, and keeps those that ended
// within the phase: a single longer profile would either end before the phase or
// take in whatever follows it.
type Profiler struct {
	url    string
	client *http.Client
	cancel context.CancelFunc
	// stop tells run to start no further chunk; done is closed when it returns.
	stop chan struct{}
	done chan struct{}

	mu     sync.Mutex
	chunks []profileChunk
	err    error
}

// profileChunk is one profile the Profiler took, and when.
type profileChunk struct {
	start, end time.Time
	p          *profile.Profile
}

// profileChunkSeconds is the length of each profile the Profiler asks for: pprof takes
// whole seconds, and the shortest keeps the least of the phase's end out.
const profileChunkSeconds = 1

// StartProfiler starts profiling the process serving net/http/pprof at debugURL
// (http://host:port) for at most maxSeconds.
func StartProfiler(ctx context.Context, client *http.Client, debugURL string, maxSeconds int) *Profiler {
	ctx, cancel := context.WithCancel(ctx)
	p := &Profiler{url: strings.TrimRight(debugURL, "/") + fmt.Sprintf("/debug/pprof/profile?seconds=%d", profileChunkSeconds),
		client: client, cancel: cancel, stop: make(chan struct{}), done: make(chan struct{})}
	go p.run(ctx, max(maxSeconds, 1)/profileChunkSeconds)
	return p
}

func (p *Profiler) run(ctx context.Context, chunks int) {
	defer close(p.done)
	for range chunks {
		select {
		case <-p.stop:
			return
		default:
		}
		start := time.Now()
		prof, err := p.fetch(ctx)
		end := time.Now()
		p.mu.Lock()
		if err != nil {
			if ctx.Err() == nil {
				p.err = err
			}
			p.mu.Unlock()
			return
		}
		p.chunks = append(p.chunks, profileChunk{start: start, end: end, p: prof})
		p.mu.Unlock()
	}
}

func (p *Profiler) fetch(ctx context.Context) (*profile.Profile, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("loadgen: CPU profile: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, errorBodyLimit))
		return nil, fmt.Errorf("loadgen: CPU profile: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	prof, err := profile.Parse(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("loadgen: CPU profile: %w", err)
	}
	return prof, nil
}

// Stop ends profiling at the phase's end and returns the profile of the phase: the
// chunks that ended by phaseEnd, merged. When the phase was shorter than one chunk
// it returns the first chunk, which runs past the phase, and says so in note.
func (p *Profiler) Stop(phaseEnd time.Time) (prof *profile.Profile, covered time.Duration, note string, err error) {
	close(p.stop)
	p.mu.Lock()
	within := 0
	for _, c := range p.chunks {
		if !c.end.After(phaseEnd) {
			within++
		}
	}
	p.mu.Unlock()
	if within > 0 {
		p.cancel() // the chunk in flight runs past the phase: not wanted
	}
	<-p.done
	p.cancel()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil && len(p.chunks) == 0 {
		return nil, 0, "", p.err
	}
	if len(p.chunks) == 0 {
		return nil, 0, "", errors.New("loadgen: CPU profile: no profile was taken")
	}
	kept := p.chunks[:max(within, 1)]
	if within == 0 {
		note = fmt.Sprintf("the phase's load lasted less than the profile's shortest length (%d s): the profile runs past it by %.1f s",
			profileChunkSeconds, kept[0].end.Sub(phaseEnd).Seconds())
	}
	profiles := make([]*profile.Profile, len(kept))
	for i, c := range kept {
		profiles[i] = c.p
		covered += c.end.Sub(c.start)
	}
	merged, err := profile.Merge(profiles)
	if err != nil {
		return nil, 0, "", fmt.Errorf("loadgen: CPU profile: merge: %w", err)
	}
	return merged, covered, note, nil
}

// WriteProfile writes p (gzipped protobuf, as go tool pprof reads it) to path,
// creating its directory.
func WriteProfile(path string, p *profile.Profile) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("loadgen: write profile: %w", err)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("loadgen: write profile: %w", err)
	}
	if err := p.Write(f); err != nil {
		f.Close()
		return fmt.Errorf("loadgen: write profile: %w", err)
	}
	return f.Close()
}

// rootFrame is the pseudo-frame at the root of every goroutine's stack: counted, it
// would give the runtime a cumulative share of all but the main goroutine.
const rootFrame = "runtime.goexit"

// SummarizeProfile gives the top functions of a CPU profile by flat and by
// cumulative share, and the flat and cumulative share of each package group.
func SummarizeProfile(p *profile.Profile, top int) ProfileSummary {
	value := len(p.SampleType) - 1 // the CPU time, after the sample count
	for i, st := range p.SampleType {
		if st.Type == "cpu" {
			value = i
		}
	}
	var total int64
	flat, cum := map[string]int64{}, map[string]int64{}
	pkgFlat, pkgCum := map[string]int64{}, map[string]int64{}
	for _, s := range p.Sample {
		v := s.Value[value]
		total += v
		// A function or a package counts once per stack however often it recurs.
		seen, seenPkg := map[string]bool{}, map[string]bool{}
		leaf := true
		for _, loc := range s.Location {
			// Line[0] is the innermost of the functions inlined at this location.
			for _, line := range loc.Line {
				name := "[unknown]"
				if line.Function != nil {
					name = line.Function.Name
				}
				if name == rootFrame {
					continue
				}
				pkg := PackageGroup(name)
				if leaf {
					flat[name] += v
					pkgFlat[pkg] += v
					leaf = false
				}
				if !seen[name] {
					seen[name] = true
					cum[name] += v
				}
				if !seenPkg[pkg] {
					seenPkg[pkg] = true
					pkgCum[pkg] += v
				}
			}
		}
	}
	sum := ProfileSummary{}
	if p.DurationNanos > 0 {
		sum.Seconds = float64(p.DurationNanos) / 1e9
	}
	if total == 0 {
		return sum
	}
	unit := 1.0
	if value < len(p.SampleType) && p.SampleType[value].Unit == "nanoseconds" {
		unit = 1e-9
	}
	sum.CPUSeconds = float64(total) * unit
	shares := func(flat, cum map[string]int64, byCum bool) []ProfileShare {
		out := make([]ProfileShare, 0, len(cum))
		for name, v := range cum { // every function or group with flat time is in cum too
			out = append(out, ProfileShare{Name: name, Flat: float64(flat[name]) / float64(total), Cum: float64(v) / float64(total)})
		}
		slices.SortFunc(out, func(a, b ProfileShare) int {
			if byCum {
				return cmp.Or(cmp.Compare(b.Cum, a.Cum), cmp.Compare(b.Flat, a.Flat), strings.Compare(a.Name, b.Name))
			}
			return cmp.Or(cmp.Compare(b.Flat, a.Flat), cmp.Compare(b.Cum, a.Cum), strings.Compare(a.Name, b.Name))
		})
		return out
	}
	byFlat, byCum := shares(flat, cum, false), shares(flat, cum, true)
	sum.ByFlat, sum.ByCum = byFlat[:min(top, len(byFlat))], byCum[:min(top, len(byCum))]
	sum.Packages = shares(pkgFlat, pkgCum, false)
	return sum
}

// PackageGroup names the group a function's CPU time is counted under: the
// package for the shop's own code (phoneshop/persistence/sqlstore), the module for
// a dependency (github.com/asynkron/protoactor-go), "syscall" for system calls,
// "runtime" for the Go runtime (scheduler, GC, allocation), and the top directory
// for the rest of the standard library (net, crypto, encoding). A symbol with no
// package is one of the runtime's assembly routines (aeshashbody, memeqbody):
// "runtime" too; one in brackets is a frame pprof could not name: "other".
func PackageGroup(function string) string {
	pkg := packageOf(function)
	elems := strings.Split(pkg, "/")
	switch {
	case strings.HasPrefix(function, "["):
		return "other"
	case pkg == "":
		return "runtime"
	case elems[0] == "phoneshop":
		return pkg
	case strings.Contains(elems[0], "."): // a module path: host/owner/repo or host/repo
		n := 2
		if elems[0] == "github.com" || elems[0] == "golang.org" || elems[0] == "gopkg.in" || elems[0] == "gitlab.com" {
			n = 3
		}
		return strings.Join(elems[:min(n, len(elems))], "/")
	case pkg == "syscall" || strings.HasPrefix(pkg, "internal/runtime/syscall") || strings.HasPrefix(pkg, "internal/syscall"):
		return "syscall"
	case elems[0] == "runtime" || strings.HasPrefix(pkg, "internal/runtime"):
		return "runtime"
	case elems[0] == "internal" && len(elems) > 1:
		return "internal/" + elems[1]
	}
	return elems[0]
}

// packageOf is the import path of a function's package, from its symbol name:
// "github.com/a/b/c.(*T).M" -> "github.com/a/b/c". The path ends at the first dot
// after its last slash; type parameters, which may hold paths, are cut off first.
func packageOf(function string) string {
	name := function
	if i := strings.IndexAny(name, "[("); i >= 0 {
		name = name[:i]
	}
	slash := strings.LastIndex(name, "/")
	dot := strings.Index(name[slash+1:], ".")
	if dot < 0 {
		return ""
	}
	return name[:slash+1+dot]
}
