package server

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

// Every string the server's logger writes is bounded: the message, a
// value, an error, a With attribute, and a value inside a group.
func TestBoundHandlerBoundsEveryString(t *testing.T) {
	var out bytes.Buffer
	long := strings.Repeat("x", 10*MaxLogField)
	log := slog.New(boundHandler{slog.NewTextHandler(&out, nil)}).With("with", long)
	log.Info(long, "v", long, "err", errors.New(long), slog.Group("g", "in", long+"\n"))
	line := out.String()
	if n := strings.Count(line, "…(1280 bytes)"); n != 4 {
		t.Errorf("%d values cut, want 4: %s", n, line)
	}
	if n := strings.Count(line, "…(1281 bytes)"); n != 1 {
		t.Errorf("the group's value not cut: %s", line)
	}
	if len(line) > 8*2*MaxLogField {
		t.Errorf("line of %d bytes: %s", len(line), line)
	}
}
