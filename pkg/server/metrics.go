package server

import (
	"encoding/json"
	"net"
	"net/http"
	"runtime"
	"sync"
	"time"
)

// statsPath serves the server's memory and session counts as JSON, to
// loopback clients only: `chatctl bench hold` divides the memory it grew
// by the sessions it holds (docs/BENCHMARKS.md ("Load")).
const statsPath = "/debug/stats"

// Stats is the JSON of /debug/stats. Byte counts are runtime.MemStats'.
type Stats struct {
	HeapInuse  uint64 `json:"heap_inuse"`
	HeapAlloc  uint64 `json:"heap_alloc"`
	StackInuse uint64 `json:"stack_inuse"`
	Sys        uint64 `json:"sys"`
	NumGC      uint32 `json:"num_gc"`
	Goroutines int    `json:"goroutines"`
	// Sessions are the instances held by a socket, Sockets the open
	// WebSockets (logged in or not), Users the users in the hub.
	Sessions int `json:"sessions"`
	Sockets  int `json:"sockets"`
	Users    int `json:"users"`
	// ConnsRefused counts the connections reset by the per-source limit
	// (connlimit.go) since the server started; ConnSources is the number
	// of sources its table holds; SourcesBlocked counts the times a source
	// was handed to the kernel to drop its SYNs (synfilter.go).
	ConnsRefused   int64 `json:"conns_refused"`
	ConnSources    int   `json:"conn_sources"`
	SourcesBlocked int64 `json:"sources_blocked"`
}

// gcEvery bounds how often /debug/stats forces a collection: loopback
// proves nothing (a reverse proxy on the host makes every client
// loopback), and a full GC on every request of a flood took more than a
// core (12,000 a second).
const gcEvery = time.Second

// forcedGC runs the collections Stats is asked for, at most one per
// gcEvery: a request within gcEvery of the last one's end shares it.
type forcedGC struct {
	mu   sync.Mutex
	last time.Time
}

func (g *forcedGC) run() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if time.Since(g.last) >= gcEvery {
		runtime.GC()
		g.last = time.Now()
	}
}

// Stats samples the server's memory and counts. With gc it collects
// garbage first (or follows a collection of less than gcEvery ago), so
// that two samples compare live memory.
func (s *Server) Stats(gc bool) Stats {
	if gc {
		s.gcs.run()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	st := Stats{HeapInuse: ms.HeapInuse, HeapAlloc: ms.HeapAlloc, StackInuse: ms.StackInuse, Sys: ms.Sys,
		NumGC: ms.NumGC, Goroutines: runtime.NumGoroutine()}
	st.ConnsRefused, st.SourcesBlocked = s.refused.Load(), s.blocked.Load()
	st.ConnSources = s.connLimit.size()
	st.Sessions, st.Users = s.hub.counts()
	s.mu.Lock()
	st.Sockets = len(s.conns)
	s.mu.Unlock()
	return st
}

// withDebug answers statsPath (GET, from a loopback address; ?gc=1 to
// collect garbage first) and hands everything else to next.
func (s *Server) withDebug(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != statsPath {
			next.ServeHTTP(w, r)
			return
		}
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet {
			http.Error(w, "GET only", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(s.Stats(r.URL.Query().Get("gc") == "1"))
	})
}
