package server

import (
	"cmp"
	"slices"

	"chatctl/pkg/server/store"
	"chatctl/pkg/wire"
)

// The multi-instance policy as pure functions: MemoryPresence applies
// them, the Redis presence has them in Lua (pkg/server/store/redis), and
// pkg/server/presencetest's table holds both to one behaviour.

// policyVictims is the multi-instance policy: the instances of list (the
// user's other live instances) that a login on platform plat displaces.
// Web: the oldest Web instances (by LoginAt, then InstID) beyond
// p.WebInstances-1 get wire.KickMultipleAccount. Another platform: an
// instance of the same platform, and under p.SingleDevice any of another
// platform, gets wire.KickMultipleDevice.
func policyVictims(plat wire.Platform, list []store.Instance, p store.Policy) []store.Victim {
	var victims []store.Victim
	if plat == wire.PlatformWeb {
		var webs []store.Instance
		for _, o := range list {
			if o.Platform == wire.PlatformWeb {
				webs = append(webs, o)
			}
		}
		slices.SortFunc(webs, func(a, b store.Instance) int {
			return cmp.Or(a.LoginAt.Compare(b.LoginAt), cmp.Compare(a.InstID, b.InstID))
		})
		for _, o := range webs[:max(0, len(webs)-p.WebInstances+1)] {
			victims = append(victims, store.Victim{Instance: o, KickType: wire.KickMultipleAccount})
		}
	}
	for _, o := range list {
		if o.Platform == wire.PlatformWeb && plat == wire.PlatformWeb {
			continue // decided above
		}
		if o.Platform == plat || (p.SingleDevice && o.Platform != plat) {
			victims = append(victims, store.Victim{Instance: o, KickType: wire.KickMultipleDevice})
		}
	}
	return victims
}

// restoreFits is the policy for an instance coming back (Restore): 0 if
// it fits next to list, else the KickType it gets (it is the one that
// does not fit: the others were admitted while it was away):
// multipleDevice if it would displace any instance so, else
// multipleAccount if it would displace a Web instance.
func restoreFits(plat wire.Platform, list []store.Instance, p store.Policy) int {
	t := 0
	for _, v := range policyVictims(plat, list, p) {
		if t != wire.KickMultipleDevice {
			t = v.KickType
		}
	}
	return t
}
