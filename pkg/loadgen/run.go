package loadgen

import (
	"context"
	"fmt"
	"io"
	"maps"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Common options of every run.
type Options struct {
	Target Target
	// Users and Sigs (one freshly minted UserSig per user, same order).
	Users []string
	Sigs  []string
	// Concurrency is how many logins are in flight at once (default 64).
	Concurrency int
	// Progress gets a line per second while the run goes (nil: none).
	Progress io.Writer
	// Retries is how many more times a login that failed with a timeout
	// or 70169 (the server's "try again") is tried, a second more after
	// each, as an app would. 0: each login is tried once, which the
	// logins figure is. Counted apart from the failures (Errors.Retried).
	Retries int
	// ServerPID, when > 0, is the server's process on this machine: its
	// CPU time is read before and after (ProcessCPU), and its resident
	// set when sessions are held.
	ServerPID int
}

// Limits describes the local limits a run met.
type Limits struct {
	NoFileSoft  uint64   `json:"nofile_soft"`
	NoFileHard  uint64   `json:"nofile_hard"`
	SourceAddrs []string `json:"source_addrs,omitempty"`
	// Stopped says which local limit (ports, open files) refused
	// connections, or would have; empty when none did.
	Stopped string `json:"stopped_by,omitempty"`
}

// CheckLimits raises RLIMIT_NOFILE to its hard limit, picks source
// addresses for conns connections and says whether a limit will bite.
// It sets t.SourceIPs when t has none.
func CheckLimits(t *Target, conns int) Limits {
	soft, hard, _ := RaiseNoFile()
	l := Limits{NoFileSoft: soft, NoFileHard: hard}
	if len(t.SourceIPs) == 0 {
		t.SourceIPs = SourceIPsFor(t.Endpoint, conns)
	}
	for _, ip := range t.SourceIPs {
		l.SourceAddrs = append(l.SourceAddrs, ip.String())
	}
	if soft > 0 && uint64(conns)+64 > soft {
		l.Stopped = fmt.Sprintf("open files: %d connections need about %d descriptors, RLIMIT_NOFILE is %d (hard %d); raise the hard limit (ulimit -Hn, as root)",
			conns, conns+64, soft, hard)
	}
	if n := max(len(t.SourceIPs), 1); conns > n*PortsPerSource() {
		l.Stopped = fmt.Sprintf("local ports: %d connections need more than %d source addresses × %d ports (net.ipv4.ip_local_port_range)",
			conns, n, PortsPerSource())
	}
	return l
}

// Errors counts failures by ErrorKey.
type Errors struct {
	mu sync.Mutex
	m  map[string]int
	n  atomic.Int64
	// limit is the first local-limit error seen.
	limit string
	// retried counts the failures that were tried again (Options.Retries).
	retried map[string]int
}

func (e *Errors) retry(err error) {
	e.mu.Lock()
	if e.retried == nil {
		e.retried = map[string]int{}
	}
	e.retried[ErrorKey(err)]++
	e.mu.Unlock()
}

// Retried returns a copy of the counts of failures that were tried again.
func (e *Errors) Retried() map[string]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return counts(e.retried)
}

func (e *Errors) add(err error) {
	k := ErrorKey(err)
	e.n.Add(1)
	e.mu.Lock()
	if e.m == nil {
		e.m = map[string]int{}
	}
	e.m[k]++
	if e.limit == "" && IsLimit(err) {
		e.limit = err.Error()
	}
	e.mu.Unlock()
}

// Map returns a copy of the counts.
func (e *Errors) Map() map[string]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return counts(e.m)
}

// counts copies m, never nil, so that JSON shows {} for none.
func counts(m map[string]int) map[string]int {
	c := make(map[string]int, len(m))
	maps.Copy(c, m)
	return c
}

// Total is how many errors were counted.
func (e *Errors) Total() int { return int(e.n.Load()) }

// Limit is the first local-limit error seen, or "".
func (e *Errors) Limit() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.limit
}

// SortedKeys returns m's keys in order.
func SortedKeys(m map[string]int) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// progress prints line() every second until stop is called.
func progress(w io.Writer, line func() string) (stop func()) {
	if w == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fmt.Fprintln(w, line())
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// ramp logs every user in with o.Concurrency logins in flight and hands
// each new Session to ok (from the login goroutine). It returns the login
// latencies (dial to wslogin reply) and the wall time.
func ramp(ctx context.Context, d *Dialer, o *Options, errs *Errors, ok func(i int, s *Session), done *atomic.Int64) ([]time.Duration, time.Duration) {
	conc := o.Concurrency
	if conc <= 0 {
		conc = 64
	}
	conc = min(conc, max(len(o.Users), 1))
	lats := make([][]time.Duration, conc)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= len(o.Users) {
					return
				}
				t0 := time.Now()
				s, err := d.Login(ctx, o.Users[i], o.Sigs[i])
				for try := 1; err != nil && try <= o.Retries && Retryable(err) && sleepCtx(ctx, time.Duration(try)*time.Second); try++ {
					errs.retry(err) // a run stopped in the pause keeps the failure as it was
					s, err = d.Login(ctx, o.Users[i], o.Sigs[i])
				}
				el := time.Since(t0) // retries included: what the app waited
				done.Add(1)
				if err != nil {
					errs.add(err)
					continue
				}
				lats[w] = append(lats[w], el)
				ok(i, s)
			}
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	return all, wall
}

// sleepCtx waits d; false when ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// LoginsResult is the outcome of Logins.
type LoginsResult struct {
	Users       int            `json:"users"`
	Concurrency int            `json:"concurrency"`
	OK          int            `json:"ok"`
	Failed      int            `json:"failed"`
	Errors      map[string]int `json:"errors"`
	Retried     map[string]int `json:"retried"` // failures tried again (Options.Retries), by key
	Seconds     float64        `json:"seconds"`
	PerSecond   float64        `json:"logins_per_second"`
	Latency     Latency        `json:"latency"`
	Protocol    Protocol       `json:"protocol"`
	Close       CloseMode      `json:"close"`
	// ServerCPUPerLogin is the server's CPU time per login, µs (when
	// Options.ServerPID is set): from before the first dial until the
	// server has gone quiet after the last close, so the close counts.
	ServerCPUPerLogin float64 `json:"server_cpu_us_per_login,omitempty"`
	ServerCPUError    string  `json:"server_cpu_error,omitempty"`
	Limits            Limits  `json:"limits"`
}

// Logins opens a new socket per user, logs in and closes it. The clock
// runs from the first dial to the last reply; closing is not counted.
func Logins(ctx context.Context, o Options) (LoginsResult, error) {
	conc := o.Concurrency
	if conc <= 0 {
		conc = 64
	}
	lim := CheckLimits(&o.Target, conc)
	d, err := NewDialer(o.Target)
	if err != nil {
		return LoginsResult{}, err
	}
	var errs Errors
	var done atomic.Int64
	cpu0, cpuErr := serverCPU(o.ServerPID)
	closers := make(chan *Session, 4096)
	var cwg sync.WaitGroup
	for range 2 {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			for s := range closers {
				s.Close()
			}
		}()
	}
	t0 := time.Now()
	stop := progress(o.Progress, func() string {
		n := done.Load()
		return fmt.Sprintf("logins %d/%d  %.0f/s  errors %d", n, len(o.Users), float64(n)/time.Since(t0).Seconds(), errs.Total())
	})
	lats, wall := ramp(ctx, d, &o, &errs, func(_ int, s *Session) { closers <- s }, &done)
	stop()
	close(closers)
	cwg.Wait()
	if l := errs.Limit(); l != "" {
		lim.Stopped = l
	}
	r := LoginsResult{
		Users: len(o.Users), Concurrency: conc, OK: len(lats), Failed: errs.Total(), Errors: errs.Map(), Retried: errs.Retried(),
		Seconds: wall.Seconds(), Latency: Summarize(lats), Limits: lim,
		Protocol: d.t.Protocol, Close: d.t.Close,
	}
	if wall > 0 {
		r.PerSecond = float64(r.OK) / wall.Seconds()
	}
	if o.ServerPID > 0 {
		if cpuErr == nil {
			var cpu1 time.Duration
			cpu1, cpuErr = QuietCPU(ctx, o.ServerPID)
			if cpuErr == nil && r.OK > 0 {
				r.ServerCPUPerLogin = float64(cpu1-cpu0) / float64(time.Microsecond) / float64(r.OK)
			}
		}
		if cpuErr != nil {
			r.ServerCPUError = cpuErr.Error()
		}
	}
	return r, ctx.Err()
}

// serverCPU is ProcessCPU(pid), or nothing when pid is 0.
func serverCPU(pid int) (time.Duration, error) {
	if pid <= 0 {
		return 0, nil
	}
	return ProcessCPU(pid)
}

// QuietCPU waits until process pid has gone quiet (less than 2 ms of CPU
// in 200 ms: done with the closes the run left it, at most 10 s) and
// returns its CPU time then.
func QuietCPU(ctx context.Context, pid int) (time.Duration, error) {
	last, err := ProcessCPU(pid)
	for end := time.Now().Add(10 * time.Second); err == nil && time.Now().Before(end) && ctx.Err() == nil; {
		time.Sleep(200 * time.Millisecond)
		var c time.Duration
		if c, err = ProcessCPU(pid); err == nil {
			quiet := c-last < 2*time.Millisecond
			last = c
			if quiet {
				break
			}
		}
	}
	return last, err
}

// HoldOptions configure Hold.
type HoldOptions struct {
	Options
	Duration time.Duration
	// Hello overrides the server's HelloInterval when > 0.
	Hello time.Duration
	// Mem samples the server's memory (nil: not measured).
	Mem *MemProbe
}

// HoldResult is the outcome of Hold.
type HoldResult struct {
	Sessions          int            `json:"sessions"`
	LoggedIn          int            `json:"logged_in"`
	LoginErrors       map[string]int `json:"login_errors"`
	LoginRetried      map[string]int `json:"login_retried"` // failures tried again (Options.Retries), by key
	RampSeconds       float64        `json:"ramp_seconds"`
	LoginLatency      Latency        `json:"login_latency"`
	HeldSeconds       float64        `json:"held_seconds"`
	OnlineAtEnd       int            `json:"online_at_end"`
	Disconnects       int            `json:"unexpected_disconnects"`
	Hellos            int64          `json:"hellos"`
	HelloFails        int64          `json:"hello_errors"`
	Heartbeats        int64          `json:"heartbeats"`
	HeartbeatTimeouts int64          `json:"heartbeat_timeouts"`
	Kicks             int64          `json:"kicks"`
	Pongs             int64          `json:"pongs,omitempty"`
	HelloInterval     float64        `json:"hello_interval_seconds"`
	Protocol          Protocol       `json:"protocol"`
	Close             CloseMode      `json:"close"`
	// ServerCPUPerKeepAlive is the server's CPU time per keep-alive round
	// trip (wshello, heartbeat.alive, a Centrifugo ping), µs, from the
	// memory sample (the sessions settled) to the end of the hold, when
	// the server's pid is known. Everything the server does while it
	// holds them counts: timers, GC over their memory, the round trips.
	ServerCPUPerKeepAlive float64    `json:"server_cpu_us_per_keepalive,omitempty"`
	KeepAlivesMeasured    int64      `json:"keepalives_measured,omitempty"`
	ServerCPUError        string     `json:"server_cpu_error,omitempty"`
	ServerMem             *MemResult `json:"server_memory,omitempty"`
	ServerMemError        string     `json:"server_memory_error,omitempty"`
	SelfBytesPerSess      uint64     `json:"loadgen_bytes_per_session"`
	Limits                Limits     `json:"limits"`
}

// MemResult is the server's memory before and while holding.
type MemResult struct {
	Source             string    `json:"source"`
	Before             ServerMem `json:"before"`
	Held               ServerMem `json:"held"`
	BytesPerSession    uint64    `json:"bytes_per_session"`
	GoroutinesPerSess  float64   `json:"goroutines_per_session,omitempty"`
	SessionsOnServer   int       `json:"sessions_on_server,omitempty"`
	MeasuredOnSessions int       `json:"measured_on_sessions"`
	// RSSPerSession is the growth of the server's resident set per
	// session, when --server-pid gave a process to read (it includes the
	// Go heap's headroom, which heap+stacks do not).
	RSSPerSession uint64 `json:"rss_bytes_per_session,omitempty"`
}

// held is the state shared by Hold and Kick.
type held struct {
	k        *Keeper
	sessions []*Session // by user index; nil where the login failed
	lats     []time.Duration
	wall     time.Duration
	errs     Errors
	limits   Limits
	mem0     ServerMem
	memErr   error
	rss0     uint64
	self0    uint64
	hello    time.Duration
	target   Target // as the Dialer took it: Protocol and Close set
}

// holdUp logs every user in and keeps them; extra is how many more
// connections the run will open (REST calls) besides the sessions.
func holdUp(ctx context.Context, o *HoldOptions, k *Keeper, label string, extra int) (*held, error) {
	h := &held{k: k, sessions: make([]*Session, len(o.Users))}
	h.limits = CheckLimits(&o.Target, len(o.Users)+extra)
	d, err := NewDialer(o.Target)
	if err != nil {
		return nil, err
	}
	h.target = d.t
	if o.Mem != nil {
		h.mem0, h.memErr = o.Mem.Sample(ctx)
		if o.Mem.PID > 0 {
			if m, err := procStatus(o.Mem.PID); err == nil {
				h.rss0 = m.RSS
			}
		}
	}
	h.self0 = selfMem()
	var done atomic.Int64
	t0 := time.Now()
	stop := progress(o.Progress, func() string {
		n := done.Load()
		return fmt.Sprintf("%s: logins %d/%d  %.0f/s  online %d  errors %d  disconnects %d",
			label, n, len(o.Users), float64(n)/time.Since(t0).Seconds(), k.Live.Load(), h.errs.Total(), k.Disconnects.Load())
	})
	var hmu sync.Mutex
	h.lats, h.wall = ramp(ctx, d, &o.Options, &h.errs, func(i int, s *Session) {
		h.sessions[i] = s
		k.Keep(s)
		hmu.Lock()
		if h.hello == 0 {
			h.hello = s.HelloInterval
			if k.Hello > 0 {
				h.hello = k.Hello
			}
		}
		hmu.Unlock()
	}, &done)
	stop()
	if l := h.errs.Limit(); l != "" {
		h.limits.Stopped = l
	}
	return h, nil
}

// closeAll closes every session, a few at a time.
func (h *held) closeAll() {
	ch := make(chan *Session, 1024)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range ch {
				s.Close()
			}
		}()
	}
	for _, s := range h.sessions {
		if s != nil {
			ch <- s
		}
	}
	close(ch)
	wg.Wait()
}

func (h *held) memResult(ctx context.Context, o *HoldOptions, r *HoldResult) {
	loggedIn := len(h.lats)
	if loggedIn > 0 {
		r.SelfBytesPerSess = uint64(max(int64(selfMem())-int64(h.self0), 0)) / uint64(loggedIn)
	}
	if o.Mem == nil {
		return
	}
	if h.memErr != nil {
		r.ServerMemError = h.memErr.Error()
		return
	}
	m1, err := o.Mem.Sample(ctx)
	if err != nil {
		r.ServerMemError = err.Error()
		return
	}
	mr := &MemResult{Source: m1.Source, Before: h.mem0, Held: m1, SessionsOnServer: m1.Sessions}
	n := loggedIn
	if m1.Source == "debug/stats" && m1.Sessions > h.mem0.Sessions {
		n = m1.Sessions - h.mem0.Sessions
	}
	mr.MeasuredOnSessions = n
	if n > 0 {
		if u1, u0 := m1.Used(), h.mem0.Used(); u1 > u0 {
			mr.BytesPerSession = (u1 - u0) / uint64(n)
		}
		if m1.Goroutines > 0 {
			mr.GoroutinesPerSess = float64(m1.Goroutines-h.mem0.Goroutines) / float64(n)
		}
		if h.rss0 > 0 {
			if m, err := procStatus(o.Mem.PID); err == nil && m.RSS > h.rss0 {
				mr.RSSPerSession = (m.RSS - h.rss0) / uint64(n)
			}
		}
	}
	r.ServerMem = mr
}

// Hold logs every user in, keeps the sessions online for o.Duration with
// the SDK's cadence, measures the server's memory meanwhile, then closes
// them.
func Hold(ctx context.Context, o HoldOptions) (HoldResult, error) {
	k := &Keeper{Hello: o.Hello}
	h, err := holdUp(ctx, &o, k, "hold", 1)
	if err != nil {
		return HoldResult{}, err
	}
	defer h.closeAll()
	r := HoldResult{Sessions: len(o.Users), LoggedIn: len(h.lats), LoginErrors: h.errs.Map(), LoginRetried: h.errs.Retried(),
		RampSeconds: h.wall.Seconds(), LoginLatency: Summarize(h.lats), Limits: h.limits,
		HelloInterval: h.hello.Seconds()}
	t0 := time.Now()
	stop := progress(o.Progress, func() string {
		el := time.Since(t0).Truncate(time.Second)
		return fmt.Sprintf("hold: %s/%s  online %d/%d  disconnects %d  hellos %d  pongs %d  heartbeat timeouts %d",
			el, o.Duration, k.Live.Load(), len(h.lats), k.Disconnects.Load(), k.Hellos.Load(), k.Pongs.Load(), k.HeartbeatTimeouts.Load())
	})
	// Memory is sampled once the sessions have settled (a hello each);
	// the server's CPU per keep-alive is measured from then to the end.
	memAt := min(o.Duration/2, max(h.hello+time.Second, 2*time.Second))
	memTimer := time.NewTimer(memAt)
	end := time.NewTimer(o.Duration)
	sampled := false
	keepAlives := func() int64 { return k.Hellos.Load() + k.Heartbeats.Load() + k.Pongs.Load() }
	pid := o.ServerPID
	if o.Mem != nil && o.Mem.PID > 0 {
		pid = o.Mem.PID
	}
	var cpu0 time.Duration
	var ka0 int64
	var cpuErr error
wait:
	for {
		select {
		case <-memTimer.C:
			h.memResult(ctx, &o, &r)
			sampled = true
			if pid > 0 {
				cpu0, cpuErr = ProcessCPU(pid)
				ka0 = keepAlives()
			}
		case <-end.C:
			break wait
		case <-ctx.Done():
			break wait
		}
	}
	memTimer.Stop()
	stop()
	if !sampled {
		h.memResult(ctx, &o, &r)
	} else if pid > 0 && cpuErr == nil {
		var cpu1 time.Duration
		cpu1, cpuErr = ProcessCPU(pid)
		if n := keepAlives() - ka0; cpuErr == nil && n > 0 {
			r.KeepAlivesMeasured = n
			r.ServerCPUPerKeepAlive = float64(cpu1-cpu0) / float64(time.Microsecond) / float64(n)
		}
	}
	if cpuErr != nil {
		r.ServerCPUError = cpuErr.Error()
	}
	r.Protocol, r.Close = h.target.Protocol, h.target.Close
	r.Pongs = k.Pongs.Load()
	r.HeldSeconds = time.Since(t0).Seconds()
	r.OnlineAtEnd = int(k.Live.Load())
	r.Disconnects = int(k.Disconnects.Load())
	r.Hellos, r.HelloFails = k.Hellos.Load(), k.HelloFails.Load()+k.HeartbeatFails.Load()
	r.Heartbeats, r.HeartbeatTimeouts = k.Heartbeats.Load(), k.HeartbeatTimeouts.Load()
	r.Kicks = k.Kicks.Load()
	return r, ctx.Err()
}

// Kicker sends one REST kick of user (rest.Client.Do with CmdKick).
type Kicker func(ctx context.Context, user string) error

// KickOptions configure Kick.
type KickOptions struct {
	Options
	// Kicks is how many held users to kick (at most len(Users)).
	Kicks int
	// KickConcurrency is how many REST kicks are in flight (default 32).
	KickConcurrency int
	// Kick performs one REST kick.
	Kick Kicker
	// Wait bounds how long to wait for the pushes after the last kick
	// answered (default 5 s).
	Wait time.Duration
	// KeyOf names a REST error for the table (default: its text).
	KeyOf func(error) string
}

// KickResult is the outcome of Kick.
type KickResult struct {
	Sessions       int            `json:"sessions"`
	LoggedIn       int            `json:"logged_in"`
	LoginErrors    map[string]int `json:"login_errors"`
	LoginRetried   map[string]int `json:"login_retried"`
	Kicks          int            `json:"kicks"`
	KickErrors     map[string]int `json:"kick_errors"`
	Delivered      int            `json:"delivered"`
	Undelivered    int            `json:"undelivered"`
	WrongType      int            `json:"wrong_kick_type"`
	Latency        Latency        `json:"kick_to_kicked_out"`
	RESTLatency    Latency        `json:"rest_call"`
	SpanSeconds    float64        `json:"all_delivered_seconds"`
	Disconnects    int            `json:"unexpected_disconnects"`
	KickConcurrent int            `json:"kick_concurrency"`
	Limits         Limits         `json:"limits"`
}

// Kick holds every user online, then kicks o.Kicks of them through the
// REST API, KickConcurrency at a time, and times each kick from the REST
// request to the KICKED_OUT push on the kicked socket.
func Kick(ctx context.Context, o KickOptions) (KickResult, error) {
	if o.Kick == nil {
		return KickResult{}, fmt.Errorf("loadgen: no Kicker")
	}
	if p, err := ParseProtocol(string(o.Target.Protocol)); err != nil || p != ProtoSDK {
		return KickResult{}, fmt.Errorf("loadgen: kicks need the SDK protocol, not %q", o.Target.Protocol)
	}
	if o.Wait <= 0 {
		o.Wait = 5 * time.Second
	}
	kc := o.KickConcurrency
	if kc <= 0 {
		kc = 32
	}
	var delivered atomic.Int64
	all := make(chan struct{})
	allDone := sync.OnceFunc(func() { close(all) })
	var want atomic.Int64
	want.Store(-1)
	k := &Keeper{OnKick: func(s *Session) {
		if s.kickSent.Load() == 0 {
			return
		}
		if n, w := delivered.Add(1), want.Load(); w >= 0 && n >= w {
			allDone()
		}
	}}
	ho := HoldOptions{Options: o.Options}
	h, err := holdUp(ctx, &ho, k, "kick", kc)
	if err != nil {
		return KickResult{}, err
	}
	defer h.closeAll()
	r := KickResult{Sessions: len(o.Users), LoggedIn: len(h.lats), LoginErrors: h.errs.Map(), LoginRetried: h.errs.Retried(), Limits: h.limits, KickConcurrent: kc}
	var targets []*Session
	for _, s := range h.sessions {
		if s != nil && len(targets) < o.Kicks {
			targets = append(targets, s)
		}
	}
	r.Kicks = len(targets)
	kerrMap := map[string]int{}
	var kmu sync.Mutex
	restLats := make([][]time.Duration, kc)
	var next atomic.Int64
	var failed atomic.Int64
	var sent atomic.Int64
	stop := progress(o.Progress, func() string {
		return fmt.Sprintf("kick: sent %d/%d  delivered %d  errors %d  online %d",
			sent.Load(), len(targets), delivered.Load(), failed.Load(), k.Live.Load())
	})
	start := time.Now()
	var wg sync.WaitGroup
	for w := range kc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= len(targets) {
					return
				}
				s := targets[i]
				t0 := time.Now()
				s.kickSent.Store(t0.UnixNano())
				err := o.Kick(ctx, s.User)
				restLats[w] = append(restLats[w], time.Since(t0))
				sent.Add(1)
				if err != nil {
					failed.Add(1)
					key := err.Error()
					if o.KeyOf != nil {
						key = o.KeyOf(err)
					}
					kmu.Lock()
					kerrMap[key]++
					kmu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	// Every kick that was answered should be delivered: wait for them.
	want.Store(int64(len(targets)) - failed.Load())
	if delivered.Load() >= want.Load() {
		allDone()
	}
	t := time.NewTimer(o.Wait)
	select {
	case <-all:
	case <-t.C:
	case <-ctx.Done():
	}
	t.Stop()
	stop()
	var lats []time.Duration
	var last time.Time
	for _, s := range targets {
		typ, at := s.Kicked()
		sentAt := s.kickSent.Load()
		if typ == 0 || sentAt == 0 {
			continue
		}
		if typ != 3 {
			r.WrongType++
		}
		lats = append(lats, at.Sub(time.Unix(0, sentAt)))
		if at.After(last) {
			last = at
		}
	}
	var rl []time.Duration
	for _, l := range restLats {
		rl = append(rl, l...)
	}
	r.KickErrors = kerrMap
	r.Delivered = len(lats)
	r.Undelivered = r.Kicks - r.Delivered
	r.Latency = Summarize(lats)
	r.RESTLatency = Summarize(rl)
	if !last.IsZero() {
		r.SpanSeconds = last.Sub(start).Seconds()
	}
	r.Disconnects = int(k.Disconnects.Load())
	return r, ctx.Err()
}
