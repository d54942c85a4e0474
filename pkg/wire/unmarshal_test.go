package wire

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	segjson "github.com/segmentio/encoding/json"
)

// Frames the official SDK sends (PROTOCOL.md appendix), and oddities a
// hostile or broken client may send.
var frameSeeds = []string{
	`{"head":{"ver":"v4","platform":7,"websdkappid":537048168,"websdkversion":"1.7.3","a2":"a2-alice-1","tinyid":"144115000000000001","status_instid":1001,"sdkappid":1400000001,"contenttype":"json","reqtime":1795626050,"sdkability":75689843,"sdkability_ext":"","cappid":0,"cs":2608808264,"servcmd":"im_open_status.wshello","seq":17058011},"body":{"is_web_uniapp":0}}`,
	`{"head":{"ver":"v4","platform":7,"identifier":"alice","usersig":"eJyrVgrxCdYrSy1SslIy0jNQ0gHzM1NS8zPTUyEyhiamxlAZY6NMiHyKJFRYrLaVR0LLRIzNTAqo4GwC","sdkappid":1400000001,"servcmd":"im_open_status.wslogin","seq":17057997,"status_instid":0},"body":{"State":"Online","is_web_uniapp":0,"InstType":0,"CustomInfo":""}}`,
	`{"head":{"servcmd":"heartbeat.alive","seq":"42"},"body":{}}`,
	`{"head":{"servcmd":"heartbeat.alive","seq":1e3},"body":null}`,
	`{"head":{"servcmd":"x","seq":-1}}`,
	`{"head":{"servcmd":"x","SEQ":5,"ServCmd":"y"}}`,
	`{"head":{"servcmd":"a\u00e9\ud83d\ude00","identifier":"\xff\xfe"},"body":[1,2]}`,
	`{"head":{"servcmd":"x","seq":1,"seq":2},"head":{"servcmd":"z"}}`,
	`{"head":{"platform":"7"}}`,
	`{"head":{"sdkappid":18446744073709551616}}`,
	`{"head":{"sdkappid":21000000000000000000}}`, // segmentio alone took it as 2553255926290448384
	`{"head":{"seq":-9223372036854775809}}`,
	`{"head":{"sdkappid":18446744073709551615,"seq":9223372036854775807}}`,
	`{"head":{"cs":4294967296}}`,
	`{"head":null,"body":"x"}`,
	`{"head":{"servcmd":"x"}} trailing`,
	`[]`,
	``,
	`{"head":{"servcmd":"x",}}`,
	`{"head":{"servcmd":"x","seq":"1","seq":"2","seq":"\u0033"}}`,
	`{"head":{"servcmd":"x","seq":""}}`,
	`{"head":{"servcmd":"x"},"body":` + strings.Repeat("[", 33) + strings.Repeat("]", 33) + `}`,
	`{"head":{"servcmd":"x"},"body":"` + strings.Repeat("[", 40) + `"}`,
	`{"head":{"servcmd":"x"},"body":["\\\"` + strings.Repeat("[", 40) + `"]}`,
}

// FuzzUnmarshalFrame checks that Unmarshal decodes a Frame exactly as
// encoding/json does: the same success or failure, the same values on
// success (on failure the value is not used).
func FuzzUnmarshalFrame(f *testing.F) {
	for _, s := range frameSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var want, got Frame
		werr := json.Unmarshal(data, &want)
		gerr := Unmarshal(data, &got)
		if werr == nil && tooDeep(data) != (depthOf(data) > MaxDepth) {
			t.Fatalf("%q: nests %d deep, tooDeep says %v", data, depthOf(data), tooDeep(data))
		}
		if tooDeep(data) { // refused before decoding; encoding/json nests to 10,000
			if gerr != ErrTooDeep {
				t.Fatalf("%q: nested deeper than %d, Unmarshal err %v", data, MaxDepth, gerr)
			}
			return
		}
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("%q: encoding/json err %v, Unmarshal err %v", data, werr, gerr)
		}
		if werr != nil {
			return
		}
		if !reflect.DeepEqual(want.Head, got.Head) || string(want.Body) != string(got.Body) {
			t.Fatalf("%q:\nencoding/json %+v %s\nUnmarshal     %+v %s", data, want.Head, want.Body, got.Head, got.Body)
		}
	})
}

// depthOf is how deeply data, one JSON value encoding/json takes, nests,
// read token by token (encoding/json's decoder does not recurse): a
// reading of its own, that tooDeep is checked against.
func depthOf(data []byte) int {
	d := json.NewDecoder(bytes.NewReader(data))
	depth, deepest := 0, 0
	for {
		t, err := d.Token()
		if err != nil {
			return deepest
		}
		switch t {
		case json.Delim('['), json.Delim('{'):
			depth++
			deepest = max(deepest, depth)
		case json.Delim(']'), json.Delim('}'):
			depth--
		}
	}
}

func TestUnmarshalFrameSeeds(t *testing.T) {
	for _, s := range frameSeeds {
		var want, got Frame
		werr := json.Unmarshal([]byte(s), &want)
		if werr == nil && depthOf([]byte(s)) > MaxDepth {
			werr, want = ErrTooDeep, Frame{}
		}
		gerr := Unmarshal([]byte(s), &got)
		if (werr == nil) != (gerr == nil) || (werr == nil && !reflect.DeepEqual(want, got)) {
			t.Errorf("%q: encoding/json %+v %v, Unmarshal %+v %v", s, want, werr, got, gerr)
		}
	}
}

// BenchmarkUnmarshalFrame decodes the SDK's wshello frame (frameSeeds[0])
// with encoding/json, with segmentio alone and with Unmarshal (its check
// for long digit runs included) (docs/BENCHMARKS.md):
//
//	go test -run '^$' -bench 'UnmarshalFrame|LongDigits' -benchmem -count 6 ./pkg/wire
func BenchmarkUnmarshalFrame(b *testing.B) {
	data := []byte(frameSeeds[0])
	for _, c := range []struct {
		name string
		fn   func([]byte, any) error
	}{{"encoding-json", json.Unmarshal}, {"segmentio", segjson.Unmarshal}, {"wire", Unmarshal}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var f Frame
				if err := c.fn(data, &f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkLongDigits scans the SDK's wshello frame with longDigits and
// with a loop over every byte (longDigitsLoop).
func BenchmarkLongDigits(b *testing.B) {
	data := []byte(frameSeeds[0])
	for _, c := range []struct {
		name string
		fn   func([]byte) bool
	}{{"every-19th", longDigits}, {"every-byte", longDigitsLoop}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if c.fn(data) {
					b.Fatal("a long run in the wshello")
				}
			}
		})
	}
}

// longDigitsLoop is longDigits as a loop over every byte: what it must
// find, and what it is measured against.
func longDigitsLoop(data []byte) bool {
	n := 0
	for _, c := range data {
		if c < '0' || c > '9' {
			n = 0
		} else if n++; n >= longRun {
			return true
		}
	}
	return false
}

// longDigits finds what a plain byte loop finds: a run of 19 digits or
// more, wherever it lies.
func FuzzLongDigits(f *testing.F) {
	for _, s := range frameSeeds {
		f.Add([]byte(s))
	}
	f.Add([]byte("1234567890123456789"))
	f.Add([]byte("x123456789012345678"))
	f.Add([]byte("x1234567890123456789x"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if got, want := longDigits(data), longDigitsLoop(data); got != want {
			t.Fatalf("longDigits(%q) = %v, want %v", data, got, want)
		}
	})
}

// Nesting past MaxDepth is refused before it is decoded, counted outside
// strings only; up to it, a frame decodes.
func TestUnmarshalDepth(t *testing.T) {
	nest := func(n int, open, close string) string {
		return `{"head":{"servcmd":"x"},"body":` + strings.Repeat(open, n-1) + strings.Repeat(close, n-1) + `}`
	}
	for _, c := range []struct {
		data string
		deep bool
	}{
		{nest(MaxDepth, "[", "]"), false},
		{nest(MaxDepth+1, "[", "]"), true},
		{nest(MaxDepth+1, `{"a":`, "}"), true},
		{nest(MaxDepth, `{"a":`, "}"), false},
		{`{"head":{"servcmd":"x"},"body":` + strings.Repeat("[", 12000), true}, // unclosed: the flood's frame
		{`{"head":{"servcmd":"x"},"body":"` + strings.Repeat("[{", 100) + `"}`, false},
		{`{"head":{"servcmd":"x"},"body":["\"` + strings.Repeat("[", 100) + `"]}`, false},
		{`{"head":{"servcmd":"x"},"body":["\\"` + strings.Repeat(",[", 40) + strings.Repeat("]", 40) + `]}`, true},
		{strings.Repeat("[]", 1000), false}, // many, one deep
	} {
		var f Frame
		err := Unmarshal([]byte(c.data), &f)
		if got := err == ErrTooDeep; got != c.deep {
			t.Errorf("%.80q... (%d bytes): Unmarshal err %v; want too deep: %v", c.data, len(c.data), err, c.deep)
		}
	}
}

// BenchmarkTooDeep is the depth check's cost on the SDK's wshello (its
// brackets counted only) and on a frame with more brackets than MaxDepth
// (scanned).
func BenchmarkTooDeep(b *testing.B) {
	for name, data := range map[string][]byte{
		"wshello": []byte(frameSeeds[0]),
		"scanned": []byte(`{"head":{"servcmd":"x"},"body":` + strings.Repeat(`[{"a":"bc"}],`, 40) + `0]}`),
	} {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				tooDeep(data)
			}
		})
	}
}

// BenchmarkSeqRepeated decodes a head that repeats "seq" as a string 1,000
// times (the network pass's frame).
func BenchmarkSeqRepeated(b *testing.B) {
	data := []byte(`{"head":{"servcmd":"x"` + strings.Repeat(`,"seq":"1"`, 1000) + `}}`)
	for b.Loop() {
		var f Frame
		if err := Unmarshal(data, &f); err != nil || f.Head.Seq != 1 {
			b.Fatal(err, f.Head.Seq)
		}
	}
}
