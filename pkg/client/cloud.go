package client

import (
	"strconv"
	"strings"
)

// EndpointCloud is the Config.Endpoint that means Tencent's own service:
// the hosts the official Web SDK 3.6.6 picks when it is given no
// proxyServer (docs/CLOUD.md).
const EndpointCloud = "cloud"

// site is one data center of the SDK's host table (its HOST PRODUCTION
// entries, read from the SDK's index.js), with the REST domain Tencent's
// REST API docs give for it.
type site struct {
	name string
	// ranges are the SDK's SDKAppID ranges [lo, hi) of the site
	// (isSingaporeSite, isKoreaSite, ...); the site with none is the default.
	ranges [][2]uint64
	// perApp is DEFAULT0, "*" standing for the SDKAppID; def is DEFAULT,
	// ipv6 IPV6, backup BACKUP and backupCN BACKUP_CN ("" where the site
	// has none). BACKUP_WEB and ANYCAST are used by the SDK only in a
	// browser and are left out (docs/CLOUD.md).
	perApp, def, ipv6, backup, backupCN string
	rest                                string
}

// sites: the default (CHINA) first, then the SDK's checks in its order.
var sites = []site{
	{name: "CHINA",
		perApp: "wss://*w4c.my-imcloud.com", def: "wss://wss.im.qcloud.com", ipv6: "wss://wssv6.im.qcloud.com",
		backup: "wss://wss.tim.qq.com", backupCN: "wss://wss.im.tencent.cn", rest: "console.tim.qq.com"},
	{name: "SINGAPORE", ranges: [][2]uint64{{20000000, 30000000}, {1720000000, 1730000000}},
		perApp: "wss://*w4s.my-imcloud.com", def: "wss://wsssgp.im.qcloud.com", ipv6: "wss://wsssgpv6.im.qcloud.com",
		backup: "wss://wsssgp.my-imcloud.com", rest: "adminapisgp.im.qcloud.com"},
	{name: "KOREA", ranges: [][2]uint64{{30000000, 40000000}, {1730000000, 1740000000}},
		perApp: "wss://*w4k.my-imcloud.com", def: "wss://wsskr.im.qcloud.com", ipv6: "wss://wsskrv6.im.qcloud.com",
		backup: "wss://wsskr.my-imcloud.com", rest: "adminapikr.im.qcloud.com"},
	{name: "GERMANY", ranges: [][2]uint64{{40000000, 50000000}, {1740000000, 1750000000}},
		perApp: "wss://*w4g.my-imcloud.com", def: "wss://wssger.im.qcloud.com", ipv6: "wss://wssgerv6.im.qcloud.com",
		backup: "wss://wssger.my-imcloud.com", rest: "adminapiger.im.qcloud.com"},
	// India's DEFAULT and BACKUP are the other way round from the other
	// sites' in the SDK's table.
	{name: "IND", ranges: [][2]uint64{{50000000, 60000000}, {1750000000, 1760000000}},
		perApp: "wss://*w4i.my-imcloud.com", def: "wss://wssind.my-imcloud.com", ipv6: "wss://wssindv6.im.qcloud.com",
		backup: "wss://wssind.im.qcloud.com", rest: "adminapiind.im.qcloud.com"},
	{name: "JPN", ranges: [][2]uint64{{60000000, 70000000}, {1760000000, 1770000000}},
		perApp: "wss://*w4j.my-imcloud.com", def: "wss://wssjpn.im.qcloud.com", ipv6: "wss://wssjpnv6.im.qcloud.com",
		backup: "wss://wssjpn.my-imcloud.com", rest: "adminapijpn.im.qcloud.com"},
	{name: "USA", ranges: [][2]uint64{{70000000, 80000000}, {1770000000, 1780000000}},
		perApp: "wss://*w4u.my-imcloud.com", def: "wss://wssusa.im.qcloud.com", ipv6: "wss://wssusav6.im.qcloud.com",
		backup: "wss://wssusa.my-imcloud.com", rest: "adminapiusa.im.qcloud.com"},
	{name: "INDONESIA", ranges: [][2]uint64{{80000000, 90000000}, {1780000000, 1790000000}},
		perApp: "wss://*w4y.my-imcloud.com", def: "wss://wssidn.im.qcloud.com", ipv6: "wss://wssidnv6.im.qcloud.com",
		backup: "wss://wssidn.my-imcloud.com", rest: "adminapiidn.im.qcloud.com"},
}

func siteOf(sdkappid uint64) *site {
	for i := range sites {
		for _, r := range sites[i].ranges {
			if sdkappid >= r[0] && sdkappid < r[1] {
				return &sites[i]
			}
		}
	}
	return &sites[0]
}

// next is the SDK's _initConnection choice of the host after cur ("" before
// the first connection), outside a browser: the same tests in the same
// order, including the SDK's substring test for the SDKAppID.
func (s *site) next(cur string, sdkappid uint64) string {
	id := strconv.FormatUint(sdkappid, 10)
	switch {
	case s.backup == "":
		return s.def
	case cur == "":
		return strings.Replace(s.perApp, "*", id, 1)
	case strings.Contains(cur, id):
		return s.def
	case cur == s.def:
		return s.ipv6
	case cur == s.ipv6:
		return s.backup
	case cur == s.backup:
		if s.backupCN != "" {
			return s.backupCN
		}
		return s.def
	case cur == s.backupCN:
		return s.def
	}
	return cur // the SDK leaves an unknown URL as it is
}

// CloudHosts is where Tencent's service is for one SDKAppID.
type CloudHosts struct {
	// Site is the SDK's name of the data center: CHINA, SINGAPORE, KOREA,
	// GERMANY, IND, JPN, USA or INDONESIA.
	Site string
	// WebSocket are the base URLs (before BuildURL's /binfo and query) a
	// fresh SDK instance tries, in its order, until one repeats: the
	// per-app host, the default, the IPv6 one, the backups.
	WebSocket []string
	// REST is the host of the data center's REST API.
	REST string
}

// Cloud returns the data center of sdkappid (by the SDK's ranges; CHINA
// outside them) and its hosts.
func Cloud(sdkappid uint64) CloudHosts {
	s := siteOf(sdkappid)
	return CloudHosts{Site: s.name, WebSocket: newHostCursor(EndpointCloud, sdkappid).cycle(), REST: s.rest}
}

// hostCursor is the SDK's current URL (its _url): where the next dial
// starts. A Watch keeps one across reconnects, so that, like the SDK, it
// moves on from the host it last tried rather than starting over.
type hostCursor struct {
	site     *site // nil: a single endpoint
	endpoint string
	sdkappid uint64
	cur      string
}

func newHostCursor(endpoint string, sdkappid uint64) *hostCursor {
	h := &hostCursor{endpoint: endpoint, sdkappid: sdkappid}
	if endpoint == EndpointCloud {
		h.site = siteOf(sdkappid)
	}
	return h
}

// cycle returns the hosts one dial tries, in order, from the host after
// the current one until a host would come again.
func (h *hostCursor) cycle() []string {
	if h.site == nil {
		return []string{h.endpoint}
	}
	var out []string
	seen := map[string]bool{}
	for cur := h.site.next(h.cur, h.sdkappid); !seen[cur]; cur = h.site.next(cur, h.sdkappid) {
		seen[cur] = true
		out = append(out, cur)
	}
	return out
}

// tried records that host was tried (whether it answered or not).
func (h *hostCursor) tried(host string) { h.cur = host }
