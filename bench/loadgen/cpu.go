package loadgen

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"time"

	"github.com/prometheus/procfs"
)

// Process is a process whose CPU a phase samples. PID 0 means it was not found or
// not given; Missing then says why, for the report.
type Process struct {
	Name    string
	PID     int
	Missing string
}

// ProcessCPU is the CPU one process used over a phase: CPUSeconds of user and
// system time in Seconds of wall time, so Cores = CPUSeconds / Seconds.
type ProcessCPU struct {
	Name       string  `json:"name"`
	PID        int     `json:"pid,omitempty"`
	CPUSeconds float64 `json:"cpu_seconds"`
	Cores      float64 `json:"cores"`
	Missing    string  `json:"missing,omitempty"`
}

// CPUUsage is where the CPU of the machine went during one phase.
type CPUUsage struct {
	Phase     string       `json:"phase"`
	Seconds   float64      `json:"seconds"`
	Processes []ProcessCPU `json:"processes"`
	// Machine is every process of the machine (/proc/stat: all but idle and
	// iowait), to see whether the sampled ones are all there is.
	Machine ProcessCPU `json:"machine"`
	CPUs    int        `json:"cpus"`
}

// CPUSample is the cumulative CPU time of some processes and of the machine at one
// moment; two of them make a CPUUsage.
type CPUSample struct {
	at       time.Time
	procs    []Process
	seconds  []float64
	errs     []error
	machine  float64
	machErr  error
	machCPUs int
}

// SampleCPU reads the cumulative CPU time (utime + stime) of each process from
// /proc/<pid>/stat, and the machine's from /proc/stat.
func SampleCPU(procs []Process) CPUSample {
	s := CPUSample{at: time.Now(), procs: procs, seconds: make([]float64, len(procs)), errs: make([]error, len(procs))}
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		s.machErr = err
		for i := range procs {
			s.errs[i] = err
		}
		return s
	}
	for i, p := range procs {
		if p.PID == 0 {
			continue
		}
		var st procfs.ProcStat
		proc, err := fs.Proc(p.PID)
		if err == nil {
			st, err = proc.Stat()
		}
		s.seconds[i], s.errs[i] = st.CPUTime(), err
	}
	stat, err := fs.Stat()
	if err != nil {
		s.machErr = err
		return s
	}
	t := stat.CPUTotal
	s.machine = t.User + t.Nice + t.System + t.IRQ + t.SoftIRQ + t.Steal
	s.machCPUs = len(stat.CPU)
	return s
}

// CPUBetween is the CPU used from start to end, two samples of the same processes.
func CPUBetween(phase string, start, end CPUSample) CPUUsage {
	wall := end.at.Sub(start.at).Seconds()
	u := CPUUsage{Phase: phase, Seconds: wall, CPUs: end.machCPUs}
	used := func(name string, pid int, missing string, a, b float64, errs ...error) ProcessCPU {
		pc := ProcessCPU{Name: name, PID: pid, Missing: missing}
		if err := errors.Join(errs...); err != nil && missing == "" {
			pc.Missing = fmt.Sprintf("not read: %v", err)
		}
		if pc.Missing == "" && wall > 0 {
			pc.CPUSeconds = b - a
			pc.Cores = pc.CPUSeconds / wall
		}
		return pc
	}
	for i, p := range start.procs {
		missing := p.Missing
		if p.PID == 0 && missing == "" {
			missing = "not found"
		}
		u.Processes = append(u.Processes, used(p.Name, p.PID, missing, start.seconds[i], end.seconds[i], start.errs[i], end.errs[i]))
	}
	u.Machine = used("all processes on the machine", 0, "", start.machine, end.machine, start.machErr, end.machErr)
	return u
}

// FindProcess returns the process whose command name (/proc/<pid>/comm) is one of
// names; when several match, the oldest, which is the server rather than a helper
// it forked. It returns a Process with PID 0 and the reason when none does.
func FindProcess(label string, names ...string) Process {
	procs, err := procfs.AllProcs()
	if err != nil {
		return Process{Name: label, Missing: fmt.Sprintf("cannot list processes: %v", err)}
	}
	var found []procfs.Proc
	for _, p := range procs {
		if comm, err := p.Comm(); err == nil && slices.Contains(names, comm) {
			found = append(found, p)
		}
	}
	if len(found) == 0 {
		return Process{Name: label, Missing: fmt.Sprintf("no %v process on this machine", names)}
	}
	started := func(p procfs.Proc) uint64 {
		st, err := p.Stat()
		if err != nil {
			return math.MaxUint64
		}
		return st.Starttime
	}
	oldest := slices.MinFunc(found, func(a, b procfs.Proc) int { return cmp.Compare(started(a), started(b)) })
	return Process{Name: label, PID: oldest.PID}
}

// ProcessOf returns pid as a Process when it runs a command named one of names
// (pid 0 or another command: missing, with the reason).
func ProcessOf(label string, pid int, names ...string) Process {
	if pid == 0 {
		return Process{Name: label, Missing: "pid not given"}
	}
	p, err := procfs.NewProc(pid)
	if err != nil {
		return Process{Name: label, Missing: fmt.Sprintf("pid %d: %v", pid, err)}
	}
	if len(names) > 0 {
		comm, err := p.Comm()
		if err != nil || !slices.Contains(names, comm) {
			return Process{Name: label, Missing: fmt.Sprintf("pid %d runs %q, not %v (not on this machine?)", pid, comm, names)}
		}
	}
	return Process{Name: label, PID: pid}
}

// Self is this process.
func Self(label string) Process { return Process{Name: label, PID: os.Getpid()} }
