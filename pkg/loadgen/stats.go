package loadgen

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"chatctl/pkg/sig"
)

// Latency is a percentile summary, in milliseconds.
type Latency struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_ms"`
	P90 float64 `json:"p90_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

// Summarize sorts ds and returns their nearest-rank percentiles.
func Summarize(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	slices.Sort(ds)
	at := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(ds)))) - 1
		i = min(max(i, 0), len(ds)-1)
		return ms(ds[i])
	}
	return Latency{N: len(ds), P50: at(.50), P90: at(.90), P99: at(.99), Max: ms(ds[len(ds)-1])}
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

// Users returns n user IDs prefix0 .. prefix(n-1).
func Users(prefix string, n int) []string {
	u := make([]string, n)
	for i := range u {
		u[i] = prefix + strconv.Itoa(i)
	}
	return u
}

// MintSigs mints one UserSig per user (valid for expire), on every core.
func MintSigs(sdkappid uint64, key string, users []string, expire time.Duration, now time.Time) []string {
	sigs := make([]string, len(users))
	var wg sync.WaitGroup
	w := runtime.GOMAXPROCS(0)
	for j := range w {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := j; i < len(users); i += w {
				sigs[i] = sig.Gen(sig.Params{SDKAppID: sdkappid, Key: key, UserID: users[i], Expire: int64(expire / time.Second)}, now)
			}
		}()
	}
	wg.Wait()
	return sigs
}

// PortsPerSource is how many connections one source address can open to
// one server port: the size of net.ipv4.ip_local_port_range (28232 by
// default), less a margin for other traffic.
func PortsPerSource() int {
	n := 28232
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		f := strings.Fields(string(b))
		if len(f) == 2 {
			lo, e1 := strconv.Atoi(f[0])
			hi, e2 := strconv.Atoi(f[1])
			if e1 == nil && e2 == nil && hi >= lo {
				n = hi - lo + 1
			}
		}
	}
	return max(n-500, 100)
}

// SourceIPsFor returns the source addresses conns connections to endpoint
// need: none (the system's choice) when one address has ports enough or
// the endpoint is not IPv4 loopback, else 127.0.0.1, 127.0.0.2, ...
func SourceIPsFor(endpoint string, conns int) []net.IP {
	per := PortsPerSource()
	if conns <= per {
		return nil
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil
	}
	ip := net.ParseIP(u.Hostname())
	if u.Hostname() == "localhost" {
		ip = net.IPv4(127, 0, 0, 1)
	}
	if ip == nil || ip.To4() == nil || !ip.IsLoopback() {
		return nil
	}
	n := (conns + per - 1) / per
	ips := make([]net.IP, 0, n)
	for i := range min(n, 250) {
		ips = append(ips, net.IPv4(127, 0, 0, byte(1+i)))
	}
	return ips
}

// ServerMem is a sample of the server's memory.
type ServerMem struct {
	Source     string `json:"source"` // "debug/stats" or "/proc/<pid>/status"
	HeapInuse  uint64 `json:"heap_inuse,omitempty"`
	StackInuse uint64 `json:"stack_inuse,omitempty"`
	Sys        uint64 `json:"sys,omitempty"`
	RSS        uint64 `json:"rss,omitempty"`
	Goroutines int    `json:"goroutines,omitempty"`
	Sessions   int    `json:"sessions,omitempty"`
	Sockets    int    `json:"sockets,omitempty"`
}

// Used is the memory figure compared across samples: heap plus stacks from
// /debug/stats, else the resident set.
func (m ServerMem) Used() uint64 {
	if m.HeapInuse+m.StackInuse > 0 {
		return m.HeapInuse + m.StackInuse
	}
	return m.RSS
}

// debugStats is the JSON of the server's /debug/stats (pkg/server/metrics.go).
type debugStats struct {
	HeapInuse  uint64 `json:"heap_inuse"`
	StackInuse uint64 `json:"stack_inuse"`
	Sys        uint64 `json:"sys"`
	Goroutines int    `json:"goroutines"`
	Sessions   int    `json:"sessions"`
	Sockets    int    `json:"sockets"`
}

// MemProbe samples a server's memory: its /debug/stats when it has one,
// else /proc/<PID>/status when PID > 0.
type MemProbe struct {
	StatsURL string // http://host:port/debug/stats; "" to skip
	PID      int
	HTTP     *http.Client
}

// NewMemProbe derives the /debug/stats URL from a ws:// endpoint.
func NewMemProbe(endpoint string, pid int) *MemProbe {
	// No keep-alive: a sample every few seconds at most, and no idle
	// connection left behind.
	p := &MemProbe{PID: pid, HTTP: &http.Client{Timeout: 10 * time.Second,
		Transport: &http.Transport{DisableKeepAlives: true}}}
	if u, err := url.Parse(endpoint); err == nil && u.Host != "" {
		scheme := "http"
		if u.Scheme == "wss" || u.Scheme == "https" {
			scheme = "https"
		}
		p.StatsURL = scheme + "://" + u.Host + "/debug/stats"
	}
	return p
}

// Sample reads the server's memory after asking it to collect garbage
// (gc=1), so that samples compare live memory.
func (p *MemProbe) Sample(ctx context.Context) (ServerMem, error) {
	var first error
	if p.StatsURL != "" {
		m, err := p.debug(ctx)
		if err == nil {
			return m, nil
		}
		first = err
	}
	if p.PID > 0 {
		return procStatus(p.PID)
	}
	if first == nil {
		first = fmt.Errorf("no way to read the server's memory")
	}
	return ServerMem{}, fmt.Errorf("%w (give --server-pid)", first)
}

func (p *MemProbe) debug(ctx context.Context) (ServerMem, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.StatsURL+"?gc=1", nil)
	if err != nil {
		return ServerMem{}, err
	}
	resp, err := p.HTTP.Do(req)
	if err != nil {
		return ServerMem{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return ServerMem{}, fmt.Errorf("%s: HTTP %d", p.StatsURL, resp.StatusCode)
	}
	var d debugStats
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		return ServerMem{}, fmt.Errorf("%s: %w", p.StatsURL, err)
	}
	return ServerMem{Source: "debug/stats", HeapInuse: d.HeapInuse, StackInuse: d.StackInuse, Sys: d.Sys,
		Goroutines: d.Goroutines, Sessions: d.Sessions, Sockets: d.Sockets}, nil
}

func procStatus(pid int) (ServerMem, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ServerMem{}, err
	}
	defer f.Close()
	m := ServerMem{Source: fmt.Sprintf("/proc/%d/status", pid)}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != "VmRSS" {
			continue
		}
		fs := strings.Fields(v)
		if len(fs) > 0 {
			kb, _ := strconv.ParseUint(fs[0], 10, 64)
			m.RSS = kb * 1024
		}
	}
	if m.RSS == 0 {
		return m, fmt.Errorf("%s: no VmRSS", m.Source)
	}
	return m, sc.Err()
}

// selfMem is the generator's own heap + stacks.
func selfMem() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse + ms.StackInuse
}
