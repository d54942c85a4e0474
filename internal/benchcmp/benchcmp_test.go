package benchcmp

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestSummarize(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want Stat
	}{
		{nil, Stat{}},
		{[]float64{0, 0}, Stat{}}, // not measured
		{[]float64{5}, Stat{5, 5, 5}},
		{[]float64{9, 1, 5}, Stat{5, 1, 9}},
		{[]float64{4, 0, 2, 8, 6}, Stat{5, 2, 8}}, // the zero is left out: even count, mean of the middle two
	} {
		if got := Summarize(tc.in); got != tc.want {
			t.Errorf("Summarize(%v) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

// Ratios are taken round by round (both systems measured under the same
// load), then summarized; a round where either was not measured is left
// out. The table marks each goal met or not.
func TestRatioAndPrint(t *testing.T) {
	r := &Result{
		Config: Config{Rounds: 3, Users: 10, Conc: 2, Sessions: 5, Systems: []System{{Name: "a"}, {Name: "b"}}, KeepAlive: true},
		Samples: map[string][]Sample{
			"a": {{LoginsPerSec: 100, CPUPerLogin: 300}, {LoginsPerSec: 200, CPUPerLogin: 260}, {LoginsPerSec: 50}},
			"b": {{LoginsPerSec: 50, CPUPerLogin: 100}, {LoginsPerSec: 400, CPUPerLogin: 200}, {LoginsPerSec: 100}},
		},
	}
	if got := r.Ratio("a", "b", fLogins); got != (Stat{0.5, 0.5, 2}) {
		t.Errorf("logins ratio %+v", got)
	}
	if got := r.Ratio("a", "b", fCPU); got != (Stat{2.15, 1.3, 3}) {
		t.Errorf("cpu ratio %+v", got)
	}
	var b bytes.Buffer
	r.Print(&b, []Goal{
		{Label: "logins a÷b", A: "a", B: "b", Field: "logins", Goal: "≥ 1.25"},
		{Label: "cpu a÷b", A: "a", B: "b", Field: "cpu", Goal: "≥ 2"},
		{Label: "rss a÷b", A: "a", B: "b", Field: "rss"},
	})
	out := b.String()
	for _, want := range []string{
		"| a | 100 (50–200) | 280 (260–300) | — | — |",
		"| logins a÷b | 0.50 (0.50–2.00) | ≥ 1.25 | NOT met |",
		"| cpu a÷b | 2.15 (1.30–3.00) | ≥ 2 | met |",
		"| rss a÷b | — |  |  |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	// Holds too short for two keep-alive cycles: no such column.
	r.Config.KeepAlive = false
	b.Reset()
	r.Print(&b, nil)
	if out := b.String(); !strings.Contains(out, "| a | 100 (50–200) | 280 (260–300) | — |\n") || strings.Contains(out, "keep-alive") {
		t.Errorf("without KeepAlive:\n%s", out)
	}
}

// The Centrifugo configuration has the keys v6 reads (internal/configtypes
// of v6.9.1): the HMAC secret, a 10 s ping with a shorter pong timeout
// (v6 requires it), the port on loopback.
func TestCentrifugoConfig(t *testing.T) {
	var c struct {
		HTTPServer struct {
			Address string `json:"address"`
			Port    int    `json:"port"`
		} `json:"http_server"`
		Client struct {
			Token struct {
				HMAC string `json:"hmac_secret_key"`
			} `json:"token"`
			Ping string `json:"ping_interval"`
			Pong string `json:"pong_timeout"`
		} `json:"client"`
	}
	if err := json.Unmarshal(CentrifugoConfig(8123, "k"), &c); err != nil {
		t.Fatal(err)
	}
	if c.HTTPServer.Address != "127.0.0.1" || c.HTTPServer.Port != 8123 || c.Client.Token.HMAC != "k" || c.Client.Ping != "10s" || c.Client.Pong != "8s" {
		t.Errorf("config %+v", c)
	}
}
