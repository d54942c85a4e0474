package wire

import (
	"strconv"
	"strings"
)

// Platform is the kind of terminal an instance logs in from: the wslogin
// head's and the URL's `platform`. The official Web SDK always presents 7
// (Web); other clients (chatctl's own `login --platform`) may choose one
// with the URL query `platform` (a number or a name below).
type Platform int

// The platform numbers (docs/SERVER.md). 7 is the Web SDK's own number; the
// others are ours, named as Tencent's REST API names them.
const (
	PlatformIPhone  Platform = 1
	PlatformAndroid Platform = 2
	PlatformPC      Platform = 3
	PlatformIPad    Platform = 4
	PlatformMac     Platform = 5
	PlatformWeb     Platform = 7
)

// Platforms lists the known platforms in number order (for help text and
// completion).
var Platforms = []Platform{PlatformIPhone, PlatformAndroid, PlatformPC, PlatformIPad, PlatformMac, PlatformWeb}

var platformNames = map[Platform]string{
	PlatformIPhone:  "iPhone",
	PlatformAndroid: "Android",
	PlatformPC:      "PC",
	PlatformIPad:    "iPad",
	PlatformMac:     "Mac",
	PlatformWeb:     "Web",
}

// Known reports whether p is one of Platforms.
func (p Platform) Known() bool { return platformNames[p] != "" }

// String is the platform's REST name (iPhone, Android, PC, iPad, Mac, Web).
func (p Platform) String() string {
	if n, ok := platformNames[p]; ok {
		return n
	}
	return "Platform(" + strconv.Itoa(int(p)) + ")"
}

// Mobile reports whether the platform is a phone or tablet (its detached
// instances show as PushOnline in query_online_status).
func (p Platform) Mobile() bool {
	return p == PlatformIPhone || p == PlatformAndroid || p == PlatformIPad
}

// ParsePlatform reads a platform number ("7") or name ("web", "iPhone",
// case-insensitive). ok is false for anything else.
func ParsePlatform(s string) (p Platform, ok bool) {
	s = strings.TrimSpace(s)
	if n, err := strconv.Atoi(s); err == nil {
		p = Platform(n)
		return p, p.Known()
	}
	for p, n := range platformNames {
		if strings.EqualFold(n, s) {
			return p, true
		}
	}
	return 0, false
}
