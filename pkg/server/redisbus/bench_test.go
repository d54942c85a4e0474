package redisbus_test

import (
	"slices"
	"testing"
	"time"

	"chatctl/pkg/server"
	"chatctl/pkg/server/redisbus"
	"chatctl/pkg/server/store/redis/redistest"
)

// BenchmarkCrossNode: one kick published on node 1 until node 2's
// subscriber has it (PUBLISH, Redis fan-out, the subscriber's read), one at
// a time; reports p50 and p99.
func BenchmarkCrossNode(b *testing.B) {
	url := redistest.URL(b)
	ch := redistest.Prefix(b, url) + "kick"
	n1, n2 := newBus(b, url, redisbus.Options{Channel: ch}), newBus(b, url, redisbus.Options{Channel: ch})
	got := make(chan uint64, 1)
	n2.Subscribe(func(k server.Kick) { got <- k.InstID })
	var lat []time.Duration
	var id uint64
	for b.Loop() {
		id++
		t0 := time.Now()
		n1.Publish(server.Kick{App: 1400000001, User: "user-00000001", InstID: id, Type: 1, By: id + 1})
		for <-got != id {
		}
		lat = append(lat, time.Since(t0))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
