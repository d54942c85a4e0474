package wire

// Error codes (Tencent's numbering; docs/CODES.md). The SDK reacts by itself to
// 70001, 20002, 1002 and, on a heartbeat, 60002: never use those for an
// ordinary failure.
const (
	CodeOK = 0

	CodeKickedByReply = 1002 // reply-borne kick with KickType (PROTOCOL.md 4.7); not used by our server

	CodeBadURL        = 60002
	CodeBadJSON       = 60003
	CodeBadIdentifier = 60004
	CodeBadUserSig    = 60005
	CodeBadSDKAppID   = 60006
	CodeNotAdmin      = 60010

	CodeSigExpired    = 70001
	CodeSigEmpty      = 70002
	CodeSigMalformed  = 70003
	CodeSigBadMAC     = 70009
	CodeUserMismatch  = 70013
	CodeAppMismatch   = 70014
	CodeNoKey         = 70016
	CodeAppNotFound   = 70020
	CodeLocked        = 70050
	CodeBlocklisted   = 70051
	CodeNotImported   = 70107
	CodeTimeout       = 70169
	CodeBadBatch      = 70206
	CodeAccountLimit  = 70398
	CodeBadParam      = 70402
	CodeAdminRequired = 70403
	CodeInternal      = 70500
	CodeTooLarge      = 80002

	// CodeA2Rejected answers an a2 re-login whose token is revoked, kicked or
	// unknown. 70002 ("UserSig empty": the a2 form carries none) is neutral
	// to the SDK 3.6.6: it stays as it is, with no KICKED_OUT and no
	// reconnect (PROTOCOL.md addendum 1; checked by the interop suite).
	CodeA2Rejected = CodeSigEmpty

	// CodeSigKicked refuses a UserSig minted before the user's last REST
	// kick (store.SigKicked), on wslogin and as a REST admin's: 70009 is
	// Tencent's code of a UserSig that fails verification, which the SDK
	// only rejects login() with and `chatctl admin` reports as a rejected
	// UserSig (exit 5).
	CodeSigKicked = CodeSigBadMAC

	// CodeUnknownCommand answers a servcmd the server does not implement.
	CodeUnknownCommand = CodeBadParam
)
