package wire

import (
	"bytes"
	"encoding/json"
	"fmt"

	segjson "github.com/segmentio/encoding/json"
)

// Unmarshal is encoding/json's Unmarshal, done by
// github.com/segmentio/encoding/json, a drop-in replacement that keeps
// encoding/json's results (FuzzUnmarshalFrame compares the two on frames)
// and decodes a frame in about a quarter of the CPU
// (BenchmarkUnmarshalFrame). Frames are decoded on a server's hottest path, every hello
// and heartbeat of every session: with 15,000 sessions held, the server's
// CPU per hello went from 106 to 90 µs (docs/BENCHMARKS.md). It adds
// nothing measurable to a chatctl command's start. On an error v may be
// partly filled, where encoding/json leaves it as it was: do not use it.
//
// One exception: data with a run of 19 digits or more (the shortest
// number that can overflow an int64) is decoded by encoding/json.
// segmentio v0.5.4 misses some overflows: 21000000000000000000 decodes
// into a uint64 or an int64 as 2553255926290448384 with no error
// (FuzzUnmarshalFrame found it), where encoding/json refuses it. The SDK
// sends no such run (its longest numbers have 10 digits, its tinyid 18 in
// a string), so the fallback is for hostile frames only.
//
// Data whose arrays and objects nest deeper than MaxDepth is refused
// (ErrTooDeep) before it is decoded.
func Unmarshal(data []byte, v any) error {
	if tooDeep(data) {
		return ErrTooDeep
	}
	if longDigits(data) {
		return json.Unmarshal(data, v)
	}
	return segjson.Unmarshal(data, v)
}

// MaxDepth bounds how deeply a frame's arrays and objects nest. segmentio
// decodes, and skips, by recursion with no bound of its own: a 12 KB frame
// of "[" grew its goroutine's stack to 3 MB and took 0.8 ms to refuse, 700
// MB of stacks for 200 such frames in flight at once from one address.
// The SDK's frames nest a few levels deep (a body holding a list of objects).
const MaxDepth = 32

// ErrTooDeep refuses data nested deeper than MaxDepth.
var ErrTooDeep = fmt.Errorf("wire: JSON nested deeper than %d levels", MaxDepth)

// tooDeep reports whether data holds more than MaxDepth arrays and objects
// open at once, outside strings. Data with no more than MaxDepth brackets
// in all cannot (every SDK frame): they are counted first, which is far
// quicker than the scan.
func tooDeep(data []byte) bool {
	if bytes.Count(data, []byte{'['})+bytes.Count(data, []byte{'{'}) <= MaxDepth {
		return false
	}
	depth, inString := 0, false
	for i := 0; i < len(data); i++ {
		switch c := data[i]; {
		case inString:
			if c == '\\' {
				i++ // the escaped byte, a quote or not
			} else if c == '"' {
				inString = false
			}
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			if depth++; depth > MaxDepth {
				return true
			}
		case c == ']' || c == '}':
			depth--
		}
	}
	return false
}

// longDigits reports whether data holds a run of longRun or more ASCII
// digits. Any such run holds one of every longRun-th byte, so only those
// are looked at, and the run around one that is a digit is measured: a
// frame is scanned in a fraction of a byte loop's time.
func longDigits(data []byte) bool {
	for i := longRun - 1; i < len(data); i += longRun {
		if !isDigit(data[i]) {
			continue
		}
		lo, hi := i, i+1
		for lo > 0 && isDigit(data[lo-1]) {
			lo--
		}
		for hi < len(data) && isDigit(data[hi]) {
			hi++
		}
		if hi-lo >= longRun {
			return true
		}
		// data[hi] is not a digit: a longer run starts after it.
		i = hi
	}
	return false
}

// longRun is the digits of the shortest number that can overflow an int64.
const longRun = 19

func isDigit(c byte) bool { return c-'0' <= 9 }
