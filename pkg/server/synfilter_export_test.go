package server

import (
	"log/slog"
	"net"
	"time"
)

// SynFilter is a listener's kernel blocklist (synfilter.go), for the
// external tests.
type SynFilter struct{ f *synFilter }

// NewSynFilter is ln's blocklist holding at most max sources, changed at
// most once every pace; nil where the kernel cannot filter ln (logged).
func NewSynFilter(ln net.Listener, log *slog.Logger, max int, pace time.Duration) *SynFilter {
	f := newSynFilter(ln, newConnLimit(1, 1, 0, true), log)
	if f == nil {
		return nil
	}
	f.max, f.pace = max, pace
	return &SynFilter{f}
}

// Block asks for the source of addr to be dropped until until.
func (s *SynFilter) Block(addr net.Addr, until time.Time) bool {
	k, _, _ := sourceKey(addr)
	ok, _ := s.f.block(k, until)
	return ok
}

// State is how many sources the list holds and how many the kernel drops.
func (s *SynFilter) State() (listed, inKernel int) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	return len(s.f.until), s.f.inKern
}

func (s *SynFilter) Close() { s.f.close() }

// SetConnBlockAfter sets how many refusals in a window get a source of s
// blocked in the kernel.
func SetConnBlockAfter(s *Server, n int) {
	s.connLimit.mu.Lock()
	s.connLimit.blockAfter = n
	s.connLimit.mu.Unlock()
}

// SetSourceFrames sets the frame bucket of s's limited sources.
func SetSourceFrames(s *Server, rate, burst float64) {
	s.connLimit.mu.Lock()
	s.connLimit.frameRate, s.connLimit.frameBurst = rate, burst
	s.connLimit.mu.Unlock()
}

// SourceFrameTokens is the level of the frame bucket of ip's source now,
// and whether the table holds the source.
func SourceFrameTokens(s *Server, ip string) (float64, bool) {
	l := s.connLimit
	k, _, _ := sourceKey(&net.TCPAddr{IP: net.ParseIP(ip)})
	l.mu.Lock()
	defer l.mu.Unlock()
	src := l.sources.m[k]
	if src == nil {
		return 0, false
	}
	return src.frames.level(time.Now(), l.frameRate, l.frameBurst), true
}

// ForgetSources empties s's table of sources, as making room in a full
// one deletes entries.
func ForgetSources(s *Server) {
	s.connLimit.mu.Lock()
	clear(s.connLimit.sources.m)
	s.connLimit.mu.Unlock()
}

// SourceOpen is how many connections ip's source holds open, as counted.
func SourceOpen(s *Server, ip string) int {
	k, _, _ := sourceKey(&net.TCPAddr{IP: net.ParseIP(ip)})
	s.connLimit.mu.Lock()
	defer s.connLimit.mu.Unlock()
	if src := s.connLimit.sources.m[k]; src != nil {
		return src.open
	}
	return 0
}
