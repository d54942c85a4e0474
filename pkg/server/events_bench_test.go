package server

import (
	"crypto/rand"
	"encoding/hex"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"chatctl/pkg/server/store"
	"chatctl/pkg/server/store/bolt"
	"chatctl/pkg/wire"
)

// BenchmarkUIState is one snapshot of the page's state (at most one a
// second serves every stream) with n users in the registry: the cost of
// copying and sorting the keys, and of reading the listed users' instances.
func BenchmarkUIState(b *testing.B) {
	for _, n := range []int{100, 10000, 100000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			st, err := bolt.Open(filepath.Join(b.TempDir(), StoreFile))
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			key := make([]byte, 16)
			rand.Read(key)
			s, err := New(Config{Apps: []AppConfig{{SDKAppID: 1400000001, Key: hex.EncodeToString(key)}}, Store: st})
			if err != nil {
				b.Fatal(err)
			}
			now := time.Now()
			for i := range n {
				u := "user" + strconv.Itoa(i)
				s.hub.users[userKey{1400000001, u}] = []*entry{{Instance: store.Instance{App: 1400000001, User: u, InstID: uint64(i + 1),
					Platform: wire.PlatformWeb, LoginAt: now, Expires: now.Unix() + 3600}, detached: now.UnixNano()}}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if got := s.uiState(); got.UsersTotal != n {
					b.Fatalf("users_total %d, want %d", got.UsersTotal, n)
				}
			}
		})
	}
}
