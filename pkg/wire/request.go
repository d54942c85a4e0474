package wire

import (
	"encoding/json"
	"hash/crc32"
)

// What the Web SDK 3.6.6 puts in every request head and URL (PROTOCOL.md
// 1.1, 2.1). Clients that imitate it (pkg/client, pkg/loadgen) send these.
const (
	SDKVersion    = "3.6.6"
	WebSDKAppID   = 537048168
	WebSDKVersion = "1.7.3"
	SDKAbility    = 75689843
)

// RequestHead is a request head as the SDK writes it, fields in its order.
// Before login it carries Identifier and UserSig, after it A2 and TinyID.
type RequestHead struct {
	Ver           string `json:"ver"`
	Platform      int    `json:"platform"`
	WebSDKAppID   int    `json:"websdkappid"`
	WebSDKVersion string `json:"websdkversion"`
	A2            string `json:"a2,omitempty"`
	TinyID        string `json:"tinyid,omitempty"`
	StatusInstID  uint64 `json:"status_instid"`
	SDKAppID      uint64 `json:"sdkappid"`
	ContentType   string `json:"contenttype"`
	ReqTime       int64  `json:"reqtime"`
	Identifier    string `json:"identifier,omitempty"`
	UserSig       string `json:"usersig,omitempty"`
	SDKAbility    int    `json:"sdkability"`
	SDKAbilityExt string `json:"sdkability_ext"`
	CAppID        int    `json:"cappid"`
	CS            uint32 `json:"cs"`
	ServCmd       string `json:"servcmd"`
	Seq           uint64 `json:"seq"`
}

// Request is a frame as a client writes it.
type Request struct {
	Head RequestHead     `json:"head"`
	Body json.RawMessage `json:"body"`
}

// NewRequest returns the request for servcmd with the SDK's constant head
// fields and its checksum; the caller sets ReqTime, StatusInstID and the
// credentials.
func NewRequest(servcmd string, seq, sdkappid uint64, platform int, body json.RawMessage) Request {
	return Request{Head: RequestHead{
		Ver: "v4", Platform: platform, WebSDKAppID: WebSDKAppID, WebSDKVersion: WebSDKVersion,
		SDKAppID: sdkappid, ContentType: "json", SDKAbility: SDKAbility,
		CS: Checksum(servcmd, body), ServCmd: servcmd, Seq: seq,
	}, Body: body}
}

// Checksum is a request's cs: CRC-32 (IEEE) of the body as sent, and 0 for
// heartbeat.alive, wslogin and wslogout (PROTOCOL.md 2.3).
func Checksum(servcmd string, body []byte) uint32 {
	switch servcmd {
	case CmdHeartbeat, CmdLogin, CmdLogout:
		return 0
	}
	return crc32.ChecksumIEEE(body)
}
