// Command benchcmp is `make bench-floor` and `make bench-peer`: chatctl
// serve beside the floors, or beside Centrifugo, measured by one generator
// (`chatctl bench`) in one run (package benchcmp). The progress goes to
// stderr, the markdown table of medians and ratios to stdout.
//
//	benchcmp -set floor|peer [-rounds 3] [-users 20000] [-sessions 10000] [-hold 30s]
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"chatctl/internal/benchcmp"
)

func main() {
	var c benchcmp.Config
	set := flag.String("set", "", "floor: chatctl serve beside the bare gorilla and TCP floors; peer: beside Centrifugo")
	flag.StringVar(&c.Chatctl, "chatctl", "bin/chatctl", "chatctl binary: the server and the generator")
	flag.StringVar(&c.Floor, "floor", "bin/benchfloor", "benchfloor binary (-set floor)")
	flag.StringVar(&c.Centrifugo, "centrifugo", "bin/centrifugo", "centrifugo binary (-set peer)")
	flag.IntVar(&c.Rounds, "rounds", 3, "rounds; the figures are medians over them")
	flag.IntVar(&c.Users, "users", 20000, "new users per logins run")
	flag.IntVar(&c.Sessions, "sessions", 10000, "sessions per hold")
	flag.DurationVar(&c.Hold, "hold", 0, "how long each hold lasts once all are logged in (default: floor 15s, the memory is sampled after 11 s; peer 30s, the keep-alive CPU is measured from 11 s on)")
	flag.IntVar(&c.Conc, "concurrency", 64, "logins in flight")
	flag.Parse()
	var goals []benchcmp.Goal
	const serve = "chatctl serve"
	switch *set {
	case "floor":
		c.Hold = cmp.Or(c.Hold, 15*time.Second)
		c.Systems = []benchcmp.System{
			{Name: serve, Kind: "serve", Hold: true},
			{Name: serve + " (close: sdk)", Kind: "serve", Close: "sdk"},
			{Name: serve + ", simple generator", Kind: "serve-simple"},
			{Name: "bare gorilla floor", Kind: "ws", Hold: true},
			{Name: "bare TCP floor", Kind: "tcp"},
		}
		goals = []benchcmp.Goal{
			{Label: "server CPU per login, serve ÷ gorilla floor", A: serve, B: "bare gorilla floor", Field: "cpu", Goal: "≤ 1.3"},
			{Label: "server CPU per login, serve ÷ TCP floor", A: serve, B: "bare TCP floor", Field: "cpu"},
			{Label: "logins/s, serve ÷ gorilla floor", A: serve, B: "bare gorilla floor", Field: "logins"},
			{Label: "RSS per held session, serve ÷ gorilla floor", A: serve, B: "bare gorilla floor", Field: "rss"},
			{Label: "server CPU per login, close sdk ÷ reset", A: serve + " (close: sdk)", B: serve, Field: "cpu"},
			{Label: "logins/s, close sdk ÷ reset", A: serve + " (close: sdk)", B: serve, Field: "logins"},
			{Label: "logins/s, chatctl bench --close reset ÷ simple generator", A: serve, B: serve + ", simple generator", Field: "logins", Goal: "≥ 1"},
		}
	case "peer":
		c.Hold = cmp.Or(c.Hold, 30*time.Second)
		c.KeepAlive = c.Hold >= 30*time.Second
		// Centrifugo's go.mod (go 1.26) leaves Go's default on: its
		// listener is Multipath TCP, which serves our plain-TCP clients in
		// fallback, at a cost. Serve's go.mod turns it off (godebug
		// multipathtcp=0), so the goals compare against Centrifugo with it
		// off too; Centrifugo as built is measured beside them.
		const cf, cfMPTCP = "Centrifugo v6.9.1", "Centrifugo v6.9.1, as built (MPTCP listener)"
		c.Systems = []benchcmp.System{
			{Name: serve, Kind: "serve", Hold: true},
			{Name: cf, Kind: "centrifugo", Hold: true, Env: []string{"GODEBUG=multipathtcp=0"}},
			{Name: cfMPTCP, Kind: "centrifugo", Hold: true},
		}
		goals = []benchcmp.Goal{
			{Label: "logins/s, serve ÷ Centrifugo", A: serve, B: cf, Field: "logins", Goal: "≥ 1.25"},
			{Label: "server CPU per login, serve ÷ Centrifugo", A: serve, B: cf, Field: "cpu"},
			{Label: "RSS per held session, serve ÷ Centrifugo", A: serve, B: cf, Field: "rss"},
			{Label: "server CPU per keep-alive, serve ÷ Centrifugo", A: serve, B: cf, Field: "keep"},
			{Label: "logins/s, serve ÷ Centrifugo as built", A: serve, B: cfMPTCP, Field: "logins"},
			{Label: "server CPU per login, serve ÷ Centrifugo as built", A: serve, B: cfMPTCP, Field: "cpu"},
			{Label: "server CPU per login, Centrifugo as built ÷ plain TCP", A: cfMPTCP, B: cf, Field: "cpu"},
			{Label: "logins/s, Centrifugo as built ÷ plain TCP", A: cfMPTCP, B: cf, Field: "logins"},
		}
	default:
		fmt.Fprintln(os.Stderr, "benchcmp: -set floor or -set peer")
		os.Exit(2)
	}
	if c.Rounds < 1 || c.Users < 1 || c.Sessions < 1 || c.Conc < 1 || c.Hold <= 0 {
		fmt.Fprintln(os.Stderr, "benchcmp: -rounds, -users, -sessions, -concurrency and -hold must be positive")
		os.Exit(2)
	}
	c.Log = os.Stderr
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(os.Stderr, "benchcmp: %s; load average at start %s\n", machine(), loadavg())
	res, err := benchcmp.Run(ctx, c)
	fmt.Printf("machine: %s; load average at the end %s (others share it: medians of interleaved rounds)\n", machine(), loadavg())
	if res != nil {
		res.Print(os.Stdout, goals)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchcmp:", err)
		os.Exit(1)
	}
}

// machine is the CPU count and model.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for l := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	return fmt.Sprintf("%d CPUs (%s)", runtime.NumCPU(), model)
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}
