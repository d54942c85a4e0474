package bolt_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"chatctl/pkg/server/store"
	"chatctl/pkg/server/store/bolt"
)

func BenchmarkOpenClose(b *testing.B) {
	path := filepath.Join(b.TempDir(), "chatctl.db")
	for b.Loop() {
		s, err := bolt.Open(path)
		if err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
}

func BenchmarkImportAccount(b *testing.B) {
	s, err := bolt.Open(filepath.Join(b.TempDir(), "chatctl.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	i := 0
	for b.Loop() {
		i++
		if _, err := s.ImportAccount(ctx, 1, store.Account{UserID: fmt.Sprint("u", i)}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkImportAccountParallel(b *testing.B) {
	s, err := bolt.Open(filepath.Join(b.TempDir(), "chatctl.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		i := time.Now().UnixNano()
		for pb.Next() {
			i++
			if _, err := s.ImportAccount(ctx, 1, store.Account{UserID: fmt.Sprint("u", i)}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkAccountExists(b *testing.B) {
	s, err := bolt.Open(filepath.Join(b.TempDir(), "chatctl.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	s.ImportAccount(ctx, 1, store.Account{UserID: "alice"})
	for b.Loop() {
		if _, err := s.AccountExists(ctx, 1, "alice"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNextInstID(b *testing.B) {
	s, err := bolt.Open(filepath.Join(b.TempDir(), "chatctl.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	for b.Loop() {
		if _, err := s.NextInstID(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReimportAccount is a login's auto-import of an existing account:
// no write, no fsync.
func BenchmarkReimportAccount(b *testing.B) {
	s, err := bolt.Open(filepath.Join(b.TempDir(), "chatctl.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	s.ImportAccount(ctx, 1, store.Account{UserID: "alice"})
	for b.Loop() {
		if _, err := s.ImportAccount(ctx, 1, store.Account{UserID: "alice"}); err != nil {
			b.Fatal(err)
		}
	}
}
