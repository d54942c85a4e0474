package benchcmp

import (
	"context"
	"strings"
	"testing"
	"time"

	"chatctl/internal/leaktest"
	"chatctl/pkg/loadgen"
	"chatctl/pkg/server/servertest"
)

// The simple generator logs every user into a real server and says so;
// a refused login fails the run with the server's code.
func TestSimpleLogins(t *testing.T) {
	leaktest.Check(t)
	ts := servertest.Start(t)
	users := loadgen.Users("sg-", 8)
	sigs := loadgen.MintSigs(ts.App.SDKAppID, ts.App.Key, users, time.Hour, time.Now())
	rate, err := SimpleLogins(context.Background(), ts.WSURL, ts.App.SDKAppID, users, sigs, 3)
	if err != nil || rate <= 0 {
		t.Fatalf("SimpleLogins: %v, %v/s", err, rate)
	}
	bad := loadgen.MintSigs(ts.App.SDKAppID, "not the key", users[:2], time.Hour, time.Now())
	if _, err := SimpleLogins(context.Background(), ts.WSURL, ts.App.SDKAppID, users[:2], bad, 2); err == nil || !strings.Contains(err.Error(), "2 of 2 simple logins failed") || !strings.Contains(err.Error(), "login refused: 70") {
		t.Fatalf("bad UserSigs: %v", err)
	}
}
