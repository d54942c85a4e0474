package wire

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateUserID(t *testing.T) {
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"alice", true},
		{"a", true},
		{strings.Repeat("x", 32), true},
		{"user@example.com", true},
		{"dev-01_ci.bot", true},
		{"with space", true},
		{"张三", true},
		{strings.Repeat("张", 10), true},  // 30 bytes
		{strings.Repeat("张", 11), false}, // 33 bytes
		{"", false},
		{strings.Repeat("x", 33), false},
		{strings.Repeat("x", 131000), false},
		{"tab\there", false},
		{"nl\n", false},
		{"nul\x00", false},
		{"del\x7f", false},
		{"c1\u0085", false},
		{"bad\xff", false},
		{"x\uFFFD", false}, // what "x\ud800" and "x\udfff" decode to
		{"x\uFFFC", true},
	} {
		err := ValidateUserID(tc.id)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateUserID(%.40q) = %v, want ok=%v", tc.id, err, tc.ok)
		}
		if err != nil {
			if !errors.Is(err, ErrUserID) {
				t.Errorf("ValidateUserID(%.40q): %v does not wrap ErrUserID", tc.id, err)
			}
			if len(err.Error()) > 120 {
				t.Errorf("ValidateUserID(%.40q): error of %d bytes", tc.id, len(err.Error()))
			}
		}
	}
}

func TestParsePlatform(t *testing.T) {
	for _, p := range Platforms {
		if got, ok := ParsePlatform(p.String()); !ok || got != p {
			t.Errorf("ParsePlatform(%q) = %v %v", p.String(), got, ok)
		}
		if got, ok := ParsePlatform(strings.ToLower(p.String())); !ok || got != p {
			t.Errorf("ParsePlatform(lower %q) = %v %v", p.String(), got, ok)
		}
	}
	for _, s := range []string{"", "6", "0", "web2", "99"} {
		if _, ok := ParsePlatform(s); ok {
			t.Errorf("ParsePlatform(%q) ok", s)
		}
	}
}
