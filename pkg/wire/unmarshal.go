package wire

import (
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
func Unmarshal(data []byte, v any) error { return segjson.Unmarshal(data, v) }
