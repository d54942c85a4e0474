package sig

import "encoding/binary"

// Privilege bits of a PrivateMapKey.
const (
	PrivCreate = 1 << iota
	PrivEnter
	PrivSendAudio
	PrivRecvAudio
	PrivSendVideo
	PrivRecvVideo
	PrivSendScreen
	PrivRecvScreen
	PrivAll = 255
)

// PrivMap is the PrivateMapKey layout carried in a userbuf (big-endian):
// u8 version · u16 len · userID · u32 sdkappid · u32 roomid · u32 expire_at
// · u32 privilege · u32 account_type · (version 1) u16 len · roomstr.
type PrivMap struct {
	Version   uint8  `json:"version"` // 0 numeric room, 1 string room
	UserID    string `json:"userid"`
	SDKAppID  uint32 `json:"sdkappid"`
	RoomID    uint32 `json:"roomid"`
	RoomStr   string `json:"roomstr,omitempty"`
	ExpireAt  uint32 `json:"expire_at"` // absolute unix seconds, truncated to 32 bits
	Privilege uint32 `json:"privilege"`
	AcctType  uint32 `json:"account_type"`
}

// Encode returns the userbuf bytes. Lengths are truncated to 16 bits as the
// official library does.
func (m PrivMap) Encode() []byte {
	b := make([]byte, 0, 1+2+len(m.UserID)+20+2+len(m.RoomStr))
	b = append(b, m.Version)
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.UserID)))
	b = append(b, m.UserID...)
	b = binary.BigEndian.AppendUint32(b, m.SDKAppID)
	b = binary.BigEndian.AppendUint32(b, m.RoomID)
	b = binary.BigEndian.AppendUint32(b, m.ExpireAt)
	b = binary.BigEndian.AppendUint32(b, m.Privilege)
	b = binary.BigEndian.AppendUint32(b, m.AcctType)
	if m.Version == 1 {
		b = binary.BigEndian.AppendUint16(b, uint16(len(m.RoomStr)))
		b = append(b, m.RoomStr...)
	}
	return b
}

// DecodePrivMap parses a PrivateMapKey userbuf; ok is false when b is not
// exactly one.
func DecodePrivMap(b []byte) (m PrivMap, ok bool) {
	if len(b) < 3 || b[0] > 1 {
		return m, false
	}
	m.Version = b[0]
	n := int(binary.BigEndian.Uint16(b[1:]))
	b = b[3:]
	if len(b) < n+20 {
		return m, false
	}
	m.UserID = string(b[:n])
	b = b[n:]
	m.SDKAppID = binary.BigEndian.Uint32(b)
	m.RoomID = binary.BigEndian.Uint32(b[4:])
	m.ExpireAt = binary.BigEndian.Uint32(b[8:])
	m.Privilege = binary.BigEndian.Uint32(b[12:])
	m.AcctType = binary.BigEndian.Uint32(b[16:])
	b = b[20:]
	if m.Version == 0 {
		return m, len(b) == 0
	}
	if len(b) < 2 {
		return m, false
	}
	n = int(binary.BigEndian.Uint16(b))
	b = b[2:]
	if len(b) != n {
		return m, false
	}
	m.RoomStr = string(b)
	return m, true
}
