// Package wire holds the frames of the Tencent Cloud Chat Web SDK WebSocket
// protocol (docs/PROTOCOL.md): the envelope, the servcmds, the bodies and the
// error codes shared by pkg/client and pkg/server. It imports nothing of ours.
package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
)

// Servcmds of the login lifecycle.
const (
	CmdHeartbeat    = "heartbeat.alive"
	CmdLogin        = "im_open_status.wslogin"
	CmdHello        = "im_open_status.wshello"
	CmdLogout       = "im_open_status.wslogout"
	CmdForceOffline = "im_open_status.stat_forceoffline"
	CmdKickOther    = "StatSvc.KickOther"
)

// KickType values of a stat_forceoffline push (PROTOCOL.md 4.5).
const (
	KickMultipleAccount = 1
	KickMultipleDevice  = 2
	KickRESTAPI         = 3
)

// KickTypeName maps a KickType to the SDK's KICKED_OUT type string.
func KickTypeName(t int) string {
	switch t {
	case KickMultipleAccount:
		return "multipleAccount"
	case KickMultipleDevice:
		return "multipleDevice"
	case KickRESTAPI:
		return "REST_API_Kick"
	}
	return KickedUnknown
}

// KickedUnknown is the KICKED_OUT type of a KickType this version does not
// know (a newer or a hostile server).
const KickedUnknown = "unknown"

// KickedUserSigExpired is the KICKED_OUT type of an expired UserSig; it has no
// KickType, it is signalled by CodeSigExpired on a pending request.
const KickedUserSigExpired = "userSigExpired"

// LogoutType values of wslogout.
const (
	LogoutUser    = 0 // logout() / destroy()
	LogoutKickAck = 1 // acknowledging a multipleAccount/multipleDevice kick
)

// Seq is a request sequence number. The SDK sends it as a JSON number, and
// some servers echo it as a string; both decode.
type Seq uint64

// UnmarshalJSON accepts a number or a string holding one. A string
// without escapes is read as it is: a head that repeats "seq" a thousand
// times (the last one counts, as in encoding/json) ran a json.Unmarshal
// for each, 6 times a plain frame's cost.
func (s *Seq) UnmarshalJSON(b []byte) error {
	if len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"' && bytes.IndexByte(b, '\\') < 0 {
		b = b[1 : len(b)-1]
	} else if len(b) > 0 && b[0] == '"' {
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return err
		}
		b = []byte(str)
	}
	if len(b) == 0 {
		return errors.New("wire: empty seq")
	}
	// Accept integral floats too (1.0e3 is still a seq a JS client could send).
	n, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(string(b), 64)
		if ferr != nil || f < 0 || f != float64(uint64(f)) {
			return errors.New("wire: bad seq " + string(b))
		}
		n = uint64(f)
	}
	*s = Seq(n)
	return nil
}

// Head is the frame head. Requests carry the credentials (identifier+usersig
// before login, a2+tinyid after); responses need only ServCmd and Seq.
type Head struct {
	ServCmd      string `json:"servcmd"`
	Seq          Seq    `json:"seq"`
	Ver          string `json:"ver,omitempty"`
	Platform     int    `json:"platform,omitempty"`
	SDKAppID     uint64 `json:"sdkappid,omitempty"`
	Identifier   string `json:"identifier,omitempty"`
	UserSig      string `json:"usersig,omitempty"`
	A2           string `json:"a2,omitempty"`
	TinyID       string `json:"tinyid,omitempty"`
	StatusInstID uint64 `json:"status_instid,omitempty"`
	ReqTime      int64  `json:"reqtime,omitempty"`
	ContentType  string `json:"contenttype,omitempty"`
	CS           uint32 `json:"cs,omitempty"`
}

// Frame is one WebSocket message: {"head":{...},"body":{...}}.
type Frame struct {
	Head Head            `json:"head"`
	Body json.RawMessage `json:"body"`
}

// MaxFrameSize is the largest frame a server accepts (Tencent: 12 KB, 80002).
const MaxFrameSize = 12 * 1024

// Envelope is the status part of every response body.
type Envelope struct {
	ActionStatus string `json:"ActionStatus"`
	ErrorCode    int    `json:"ErrorCode"`
	ErrorInfo    string `json:"ErrorInfo"`
}

// OK is the success envelope.
func OK() Envelope { return Envelope{ActionStatus: "OK"} }

// Fail is a failure envelope.
func Fail(code int, info string) Envelope {
	return Envelope{ActionStatus: "FAIL", ErrorCode: code, ErrorInfo: info}
}

// LoginRequest is the body of wslogin.
type LoginRequest struct {
	State       string `json:"State"`
	IsWebUniapp int    `json:"is_web_uniapp"`
	InstType    int    `json:"InstType"`
	CustomInfo  string `json:"CustomInfo"`
}

// LoginResponse is the success body of wslogin (PROTOCOL.md 4.2).
type LoginResponse struct {
	Envelope
	A2Key         string `json:"A2Key,omitempty"`
	TinyID        string `json:"TinyId,omitempty"`
	InstID        uint64 `json:"InstId,omitempty"`
	HelloInterval int    `json:"HelloInterval,omitempty"`
	TimeStamp     int64  `json:"TimeStamp,omitempty"`
}

// LogoutRequest is the body of wslogout.
type LogoutRequest struct {
	LogoutType  int `json:"wslogout_type"`
	IsWebUniapp int `json:"is_web_uniapp"`
}

// HelloRequest is the body of wshello.
type HelloRequest struct {
	IsWebUniapp int `json:"is_web_uniapp"`
}

// KickPush is the body of a stat_forceoffline push.
type KickPush struct {
	EventArray []KickEvent `json:"EventArray"`
}

// KickEvent is one event of a KickPush.
type KickEvent struct {
	Event             int          `json:"Event"`
	C2cNotifyMsgArray []KickNotify `json:"C2cNotifyMsgArray"`
}

// KickNotify wraps one kick notification.
type KickNotify struct {
	KickoutMsgNotify *KickoutMsgNotify `json:"KickoutMsgNotify,omitempty"`
}

// KickoutMsgNotify says who was kicked and why.
type KickoutMsgNotify struct {
	KickType    int         `json:"KickType"`
	NewInstInfo NewInstInfo `json:"NewInstInfo"`
}

// NewInstInfo describes the instance that caused a kick.
type NewInstInfo struct {
	InstType int    `json:"InstType"`
	InstID   uint64 `json:"InstId,omitempty"`
}

// EventKick is the Event number of a kick in a stat_forceoffline push.
const EventKick = 9

// NewKickPush builds the push body for KickType t (PROTOCOL.md 4.5).
func NewKickPush(t int, newInst uint64) KickPush {
	return KickPush{EventArray: []KickEvent{{
		Event: EventKick,
		C2cNotifyMsgArray: []KickNotify{{KickoutMsgNotify: &KickoutMsgNotify{
			KickType: t, NewInstInfo: NewInstInfo{InstID: newInst},
		}}},
	}}}
}

// KickType returns the KickType carried by a push body, or 0 if it holds none.
func (p KickPush) KickType() int {
	for _, e := range p.EventArray {
		for _, n := range e.C2cNotifyMsgArray {
			if n.KickoutMsgNotify != nil && n.KickoutMsgNotify.KickType != 0 {
				return n.KickoutMsgNotify.KickType
			}
		}
	}
	return 0
}
