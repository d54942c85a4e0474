package session

import (
	"fmt"
	"testing"
)

// BenchmarkPut: one locked read-modify-write with fsync, on a file of 50
// profiles.
func BenchmarkPut(b *testing.B) {
	s := Open(b.TempDir())
	for i := range 50 {
		name := fmt.Sprintf("p%02d", i)
		if err := s.Put(b.Context(), name, sample(name)); err != nil {
			b.Fatal(err)
		}
	}
	p := sample("x")
	for i := 0; b.Loop(); i++ {
		p.InstID = uint64(i) // a real change, so every Put writes
		if err := s.Put(b.Context(), "p00", p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGet: a shared-locked read of a file of 50 profiles.
func BenchmarkGet(b *testing.B) {
	s := Open(b.TempDir())
	for i := range 50 {
		name := fmt.Sprintf("p%02d", i)
		if err := s.Put(b.Context(), name, sample(name)); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		if _, ok, err := s.Get(b.Context(), "p07"); err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
}
