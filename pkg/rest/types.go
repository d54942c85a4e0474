// Package rest is the subset of Tencent Cloud Chat's server REST API that
// chatctl speaks (docs/REST.md) as both sides see it: the commands, the
// request and answer types, and a Client. `chatctl admin` calls Tencent or
// `chatctl serve` with it; the server's handler (pkg/server/rest) decodes
// the same types, so that neither side imports the other.
package rest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"

	"chatctl/pkg/wire"
)

// Prefix is the path of every command: /v4/<command>.
const Prefix = "/v4/"

// Commands: the path after Prefix.
const (
	CmdKick               = "im_open_login_svc/kick"
	CmdQueryOnlineStatus  = "openim/query_online_status"
	CmdAccountImport      = "im_open_login_svc/account_import"
	CmdMultiAccountImport = "im_open_login_svc/multiaccount_import"
	CmdAccountDelete      = "im_open_login_svc/account_delete"
	CmdAccountCheck       = "im_open_login_svc/account_check"
)

// Limits, as Tencent's.
const (
	MaxUserID      = wire.MaxUserIDLen // bytes of a UserID (wire.ValidateUserID)
	MaxNick        = 500               // bytes of a Nick (Tencent documents none; ours)
	MaxFaceURL     = 500               // bytes of a FaceUrl (Tencent documents none; ours)
	MaxOnlineQuery = 500               // To_Account of query_online_status
	MaxBatch       = 100               // multiaccount_import, account_delete, account_check
	MaxBody        = 1 << 20           // bytes of a request body
)

// Status values.
const (
	ActionOK   = "OK"
	ActionFail = "FAIL"

	StatusOnline     = "Online"
	StatusPushOnline = "PushOnline"
	StatusOffline    = "Offline"

	AccountImported    = "Imported"
	AccountNotImported = "NotImported"

	// InfoNotExist is Tencent's ResultInfo for 70107 in account_delete.
	InfoNotExist = "Err_TLS_PT_Open_Login_Account_Not_Exist"
)

// Envelope is on every answer.
type Envelope struct {
	ActionStatus string `json:"ActionStatus"`
	ErrorCode    int    `json:"ErrorCode"`
	ErrorInfo    string `json:"ErrorInfo"`
}

// Err is nil for an OK answer, else an *Error.
func (e Envelope) Err() error {
	if e.ActionStatus == ActionOK && e.ErrorCode == 0 {
		return nil
	}
	return &Error{Code: e.ErrorCode, Info: e.ErrorInfo}
}

// Error is a FAIL answer.
type Error struct {
	Code int
	Info string
}

func (e *Error) Error() string {
	if e.Code == 0 && e.Info == "" {
		return "FAIL with no error code or info"
	}
	if e.Info == "" {
		return fmt.Sprint(e.Code)
	}
	return fmt.Sprintf("%d %s", e.Code, e.Info)
}

// SigRejected reports whether the code is a UserSig rejection (70001-70014).
func (e *Error) SigRejected() bool { return e.Code >= 70001 && e.Code <= 70014 }

// Flag is Tencent's 0/1 integer flag; decoding also takes true/false.
type Flag bool

// MarshalJSON writes 1 or 0.
func (f Flag) MarshalJSON() ([]byte, error) {
	if f {
		return []byte("1"), nil
	}
	return []byte("0"), nil
}

// UnmarshalJSON reads a number (non-zero is true) or a boolean.
func (f *Flag) UnmarshalJSON(b []byte) error {
	switch s := string(bytes.TrimSpace(b)); s {
	case "true":
		*f = true
	case "false", "null":
		*f = false
	default:
		var n float64
		if err := json.Unmarshal(b, &n); err != nil {
			return &json.UnmarshalTypeError{Value: "non-number", Type: reflect.TypeFor[Flag]()}
		}
		*f = n != 0
	}
	return nil
}

// UserRef names one user: UserID, or the older field name Identifier.
type UserRef struct {
	UserID     string `json:"UserID,omitempty"`
	Identifier string `json:"Identifier,omitempty"`
}

// User is UserID, else Identifier.
func (u UserRef) User() string {
	if u.UserID != "" {
		return u.UserID
	}
	return u.Identifier
}

// TooManyError is what decoding a request list longer than its limit
// fails with (70206). Decoding stops at the first item past the limit, so
// that a body of 100,000 short UserIDs costs what 501 do, not 100,000
// strings.
type TooManyError struct{ Max int }

func (e *TooManyError) Error() string { return fmt.Sprintf("a list of over %d items", e.Max) }

// maxItems is the limit of a bounded list.
type maxItems interface{ max() int }

type (
	upToOnlineQuery struct{} // MaxOnlineQuery
	upToBatch       struct{} // MaxBatch
)

func (upToOnlineQuery) max() int { return MaxOnlineQuery }
func (upToBatch) max() int       { return MaxBatch }

// list is a request's JSON array of at most M.max() items. It is a plain
// slice to its users and marshals as one; decoding reads it item by item
// and fails with a *TooManyError past the limit.
type list[T any, M maxItems] []T

// UnmarshalJSON reads the array, or null (a nil list).
func (l *list[T, M]) UnmarshalJSON(b []byte) error {
	d := json.NewDecoder(bytes.NewReader(b))
	tok, err := d.Token()
	if err != nil {
		return err
	}
	if tok == nil {
		*l = nil
		return nil
	}
	if tok != json.Delim('[') {
		return &json.UnmarshalTypeError{Value: "non-array", Type: reflect.TypeFor[[]T]()}
	}
	var m M
	out := make(list[T, M], 0, min(8, m.max()))
	for d.More() {
		if len(out) == m.max() {
			return &TooManyError{Max: m.max()}
		}
		var v T
		if err := d.Decode(&v); err != nil {
			return err
		}
		out = append(out, v)
	}
	*l = out
	return nil
}

// KickRequest is the body of im_open_login_svc/kick.
type KickRequest = UserRef

// QueryOnlineStatusRequest is the body of openim/query_online_status.
type QueryOnlineStatusRequest struct {
	IsNeedDetail Flag                          `json:"IsNeedDetail,omitempty"`
	ToAccount    list[string, upToOnlineQuery] `json:"To_Account"`
}

// QueryOnlineStatusResponse answers it.
type QueryOnlineStatusResponse struct {
	Envelope
	QueryResult []OnlineResult `json:"QueryResult"`
	ErrorList   []OnlineError  `json:"ErrorList"`
}

// OnlineResult is one user's state.
type OnlineResult struct {
	ToAccount string           `json:"To_Account"`
	Status    string           `json:"Status"`
	Detail    []PlatformStatus `json:"Detail,omitempty"`
}

// PlatformStatus is one online instance.
type PlatformStatus struct {
	Platform string `json:"Platform"`
	Status   string `json:"Status"`
}

// OnlineError is a user the query could not answer (70107 not imported,
// 70402 bad UserID).
type OnlineError struct {
	ToAccount string `json:"To_Account"`
	ErrorCode int    `json:"ErrorCode"`
}

// AccountImportRequest is the body of im_open_login_svc/account_import.
type AccountImportRequest struct {
	UserID     string `json:"UserID,omitempty"`
	Identifier string `json:"Identifier,omitempty"`
	Nick       string `json:"Nick,omitempty"`
	FaceURL    string `json:"FaceUrl,omitempty"`
}

// User is UserID, else Identifier.
func (r AccountImportRequest) User() string { return UserRef{r.UserID, r.Identifier}.User() }

// MultiAccountImportRequest is the body of multiaccount_import: AccountList,
// or the older form Accounts.
type MultiAccountImportRequest struct {
	AccountList list[AccountImportRequest, upToBatch] `json:"AccountList,omitempty"`
	Accounts    list[string, upToBatch]               `json:"Accounts,omitempty"`
}

// MultiAccountImportResponse answers it.
type MultiAccountImportResponse struct {
	Envelope
	FailAccounts []string `json:"FailAccounts"`
}

// AccountDeleteRequest is the body of account_delete.
type AccountDeleteRequest struct {
	DeleteItem list[UserRef, upToBatch] `json:"DeleteItem"`
}

// AccountDeleteResponse answers it.
type AccountDeleteResponse struct {
	Envelope
	ResultItem []DeleteResult `json:"ResultItem"`
}

// DeleteResult is one user's outcome.
type DeleteResult struct {
	ResultCode int    `json:"ResultCode"`
	ResultInfo string `json:"ResultInfo"`
	UserID     string `json:"UserID"`
}

// AccountCheckRequest is the body of account_check.
type AccountCheckRequest struct {
	CheckItem list[UserRef, upToBatch] `json:"CheckItem"`
}

// AccountCheckResponse answers it.
type AccountCheckResponse struct {
	Envelope
	ResultItem []CheckResult `json:"ResultItem"`
}

// CheckResult is one user's status.
type CheckResult struct {
	UserID        string `json:"UserID"`
	ResultCode    int    `json:"ResultCode"`
	ResultInfo    string `json:"ResultInfo"`
	AccountStatus string `json:"AccountStatus"`
}
