package bench

import (
	"bufio"
	"bytes"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Machine describes where the figures were measured: on a shared machine
// wall-clock figures vary with the other work, CPU time and allocations
// much less.
type Machine struct {
	CPUs       int       `json:"cpus"`
	GOMAXPROCS int       `json:"gomaxprocs"`
	CPUModel   string    `json:"cpu_model,omitempty"`
	MemTotalMB int       `json:"mem_total_mib,omitempty"`
	GoVersion  string    `json:"go_version"`
	OS         string    `json:"os"`
	LoadBefore []float64 `json:"load_before,omitempty"`
	LoadAfter  []float64 `json:"load_after,omitempty"`
	Caveat     string    `json:"caveat"`
}

func readMachine() Machine {
	m := Machine{
		CPUs:       runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		GoVersion:  runtime.Version(),
		OS:         runtime.GOOS + "/" + runtime.GOARCH,
		LoadBefore: loadAverage(),
	}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(data)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		if kb := statusField(data, "MemTotal:"); kb > 0 {
			m.MemTotalMB = int(kb >> 10)
		}
	}
	m.Caveat = "measured on " + strconv.Itoa(m.CPUs) + " CPU(s) shared with other work: " +
		"the ingesters run in processes of their own and their CPU figures are theirs alone, but the broker, " +
		"the Elasticsearch stand-in and the HTTP clients of the query scenarios run on the same cores; " +
		"wall-clock rates and latencies vary between runs, CPU time and allocations per event much less"
	return m
}

// loadAverage is the 1, 5 and 15 minute load averages, when the system says.
func loadAverage() []float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return nil
	}
	var out []float64
	for _, f := range strings.Fields(string(data))[:3] {
		v, err := strconv.ParseFloat(f, 64)
		if err != nil {
			return nil
		}
		out = append(out, v)
	}
	return out
}

// cpuTime is the CPU time (user and system) the process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// MemoryStatus is the process's resident memory, from /proc/self/status.
type MemoryStatus struct {
	// HWM is the peak resident set size (VmHWM).
	HWM int64 `json:"vm_hwm_bytes"`
	// RSS is the resident set size now (VmRSS).
	RSS int64 `json:"vm_rss_bytes"`
}

// ReadMemoryStatus reads the process's resident memory; zero values where
// /proc is missing.
func ReadMemoryStatus() MemoryStatus {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return MemoryStatus{}
	}
	return MemoryStatus{HWM: statusField(data, "VmHWM:") << 10, RSS: statusField(data, "VmRSS:") << 10}
}

// statusField is the number (in kB) of a "Name:   123 kB" line.
func statusField(data []byte, name string) int64 {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, name); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				return 0
			}
			n, _ := strconv.ParseInt(f[0], 10, 64)
			return n
		}
	}
	return 0
}

// usage is a snapshot of the process's CPU time and heap allocations, to
// measure the work of a span of time (the whole process: in-process
// brokers and servers included).
type usage struct {
	at     time.Time
	cpu    time.Duration
	allocs uint64 // objects
	bytes  uint64
	// written is what the process sent to storage so far (write_bytes
	// of /proc/self/io: page-cache pages it dirtied), 0 where unknown.
	written int64
}

var allocMetrics = []string{"/gc/heap/allocs:objects", "/gc/heap/allocs:bytes"}

func snapshot() usage {
	s := make([]metrics.Sample, len(allocMetrics))
	for i, name := range allocMetrics {
		s[i].Name = name
	}
	metrics.Read(s)
	u := usage{at: time.Now(), cpu: cpuTime(), written: storageWritten()}
	if s[0].Value.Kind() == metrics.KindUint64 {
		u.allocs = s[0].Value.Uint64()
	}
	if s[1].Value.Kind() == metrics.KindUint64 {
		u.bytes = s[1].Value.Uint64()
	}
	return u
}

// span is the work between two snapshots.
type span struct {
	wall    time.Duration
	cpu     time.Duration
	allocs  uint64
	bytes   uint64
	written int64
}

func (u usage) until(v usage) span {
	return span{wall: v.at.Sub(u.at), cpu: v.cpu - u.cpu, allocs: v.allocs - u.allocs, bytes: v.bytes - u.bytes,
		written: v.written - u.written}
}

// storageWritten is write_bytes of /proc/self/io.
func storageWritten() int64 {
	data, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0
	}
	return statusField(data, "write_bytes:")
}

// percentile is the p-th percentile (0 < p ≤ 100) of sorted, by the
// nearest-rank method: with 40 samples p95 is the 38th smallest.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(float64(len(sorted))*p/100+0.999999) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

const mib = 1 << 20

// collectGarbage starts a measurement from a collected heap.
func collectGarbage() { runtime.GC() }
