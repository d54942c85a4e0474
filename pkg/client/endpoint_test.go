package client

import (
	"errors"
	"strings"
	"testing"
)

func TestNormalizeEndpoint(t *testing.T) {
	for in, want := range map[string]string{
		"ws://127.0.0.1:7468":        "ws://127.0.0.1:7468",
		"ws://127.0.0.1:7468/":       "ws://127.0.0.1:7468",
		"http://127.0.0.1:7468":      "ws://127.0.0.1:7468",
		"HTTP://LocalHost:7468//":    "ws://localhost:7468",
		"https://chat.example":       "wss://chat.example",
		"wss://chat.example:443/":    "wss://chat.example",
		"ws://chat.example:80":       "ws://chat.example",
		"ws://chat.example:443":      "ws://chat.example:443",
		"wss://chat.example:8443/im": "wss://chat.example:8443/im",
		"ws://[::1]:7468/":           "ws://[::1]:7468",
		"ws://[::1]:80":              "ws://[::1]",
		"ws://[::1]":                 "ws://[::1]",
		" cloud ":                    "cloud",
		"Cloud":                      "cloud",
	} {
		got, err := NormalizeEndpoint(in)
		if err != nil || got != want {
			t.Errorf("NormalizeEndpoint(%q) = %q, %v; want %q", in, got, err, want)
		}
		if again, err := NormalizeEndpoint(got); err != nil || again != got {
			t.Errorf("NormalizeEndpoint(%q) is not stable: %q, %v", got, again, err)
		}
	}
	for _, in := range []string{"", "foo", "127.0.0.1:7468", "ftp://h", "ws://", "ws://:80",
		"ws://h:0", "ws://h:99999", "ws://h:x", "ws://u:p@h", "ws://h/?a=1", "ws://h/#f", "ws://h?"} {
		if got, err := NormalizeEndpoint(in); !errors.Is(err, ErrBadEndpoint) {
			t.Errorf("NormalizeEndpoint(%q) = %q, %v; want ErrBadEndpoint", in, got, err)
		}
	}
	// The refusal of user info does not print the password.
	if _, err := NormalizeEndpoint("wss://admin:s3cret@h:443/x"); err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), `"wss://…@h:443/x"`) {
		t.Errorf("user info: %v", err)
	}
}
