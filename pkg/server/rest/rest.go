package rest

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"chatctl/pkg/rest"
	"chatctl/pkg/server/store"
	"chatctl/pkg/sig"
	"chatctl/pkg/wire"
)

// apiError is a FAIL answer.
type apiError struct {
	code int
	info string
}

func failf(code int, format string, a ...any) *apiError {
	return &apiError{code: code, info: fmt.Sprintf(format, a...)}
}

// call is one authenticated request.
type call struct {
	ctx  context.Context
	app  uint64
	body []byte
}

type handler struct {
	b    Backend
	log  *slog.Logger
	cmds map[string]func(*handler, *call) (any, *apiError)
}

// Handler serves the REST API under rest.Prefix: POST
// /v4/<service>/<command>?sdkappid=&identifier=&usersig=&random=&contenttype=json.
// Every answer is HTTP 200 with the JSON envelope; see docs/CODES.md for
// the codes. It never logs a UserSig. Every UserID it takes (the admin
// identifier, each body's users) passes wire.ValidateUserID, as every
// wslogin does, so that no user can log in whom it cannot kick, query or
// delete.
func Handler(b Backend, log *slog.Logger) http.Handler {
	return &handler{b: b, log: cmp.Or(log, slog.New(slog.DiscardHandler)), cmds: map[string]func(*handler, *call) (any, *apiError){
		rest.CmdKick:               (*handler).kick,
		rest.CmdQueryOnlineStatus:  (*handler).queryOnline,
		rest.CmdAccountImport:      (*handler).accountImport,
		rest.CmdMultiAccountImport: (*handler).multiImport,
		rest.CmdAccountDelete:      (*handler).accountDelete,
		rest.CmdAccountCheck:       (*handler).accountCheck,
	}}
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	command := strings.TrimPrefix(r.URL.Path, rest.Prefix)
	q := r.URL.Query()
	resp, fail := h.serve(w, r, command, q)
	body, err := json.Marshal(resp)
	if err != nil { // our own types: cannot happen
		fail = failf(wire.CodeInternal, "internal error")
	}
	if fail != nil {
		body, _ = json.Marshal(rest.Envelope{ActionStatus: rest.ActionFail, ErrorCode: fail.code, ErrorInfo: fail.info})
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	w.Write(append(body, '\n'))

	attrs := []any{"method", r.Method, "command", command, "sdkappid", q.Get("sdkappid"),
		"identifier", q.Get("identifier"), "ms", time.Since(start).Milliseconds()}
	if fail == nil {
		attrs = append(attrs, "code", 0)
	} else {
		attrs = append(attrs, "code", fail.code, "info", fail.info)
	}
	h.log.Info("rest", attrs...)
}

// serve runs one request: URL, identity, body, command, in that order.
func (h *handler) serve(w http.ResponseWriter, r *http.Request, command string, q map[string][]string) (any, *apiError) {
	run, ok := h.cmds[command]
	// A command is matched on the path as sent: an escaped one
	// ("im_open_login_svc%2Fkick") would pass a proxy's rule for the
	// literal path and still reach the command.
	if !strings.HasPrefix(r.URL.Path, rest.Prefix) || r.URL.RawPath != "" || !ok {
		return nil, failf(wire.CodeBadURL, "unknown command %q", clip(strings.TrimPrefix(r.URL.EscapedPath(), "/")))
	}
	if r.Method != http.MethodPost {
		return nil, failf(wire.CodeBadURL, "HTTP method %q not allowed: use POST", clip(r.Method))
	}
	// Each identity parameter once: a repeated one may be read as its
	// first value here and as its last by a proxy in front.
	get := func(k string, code int) (string, *apiError) {
		switch v := q[k]; {
		case len(v) > 1:
			return "", failf(code, "%s given %d times", k, len(v))
		case len(v) == 0 || v[0] == "":
			return "", failf(code, "%s missing", k)
		}
		return q[k][0], nil
	}
	sapp, e := get("sdkappid", wire.CodeBadSDKAppID)
	if e != nil {
		return nil, e
	}
	app, err := strconv.ParseUint(sapp, 10, 64)
	if err != nil || app == 0 {
		return nil, failf(wire.CodeBadSDKAppID, "sdkappid is not a number")
	}
	key, admins, ok := h.b.App(app)
	if !ok {
		return nil, failf(wire.CodeBadSDKAppID, "sdkappid %d is not an app of this server", app)
	}
	admin, e := get("identifier", wire.CodeBadIdentifier)
	if e != nil {
		return nil, e
	}
	if err := wire.ValidateUserID(admin); err != nil {
		return nil, failf(wire.CodeBadIdentifier, "identifier: %v", err)
	}
	usersig, e := get("usersig", wire.CodeBadUserSig)
	if e != nil {
		return nil, e
	}
	info, err := sig.Verify(app, key, admin, usersig, h.b.Now())
	if err != nil {
		var se *sig.Error
		if errors.As(err, &se) {
			return nil, failf(se.Code, "usersig rejected: %s", se.Reason)
		}
		return nil, failf(wire.CodeSigMalformed, "usersig rejected")
	}
	if !slices.Contains(admins, admin) {
		return nil, failf(wire.CodeNotAdmin, "identifier %q is not an app administrator", admin)
	}
	c := &call{ctx: r.Context(), app: app}
	// A REST kick of the admin (or the deletion of its account) refuses its
	// earlier UserSigs here as on wslogin: a leaked one has no power left.
	wm, err := h.b.Store().KickWatermark(c.ctx, app, admin)
	if err != nil {
		return nil, h.storeFail(c, "watermark", err)
	}
	if store.SigKicked(wm, info.Time) {
		return nil, failf(wire.CodeSigKicked, "usersig invalidated by a REST kick: mint a new one")
	}
	if r.ContentLength > rest.MaxBody { // refused without reading a byte of it
		return nil, failf(wire.CodeBadJSON, "body over %d bytes", rest.MaxBody)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, rest.MaxBody))
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return nil, failf(wire.CodeBadJSON, "body over %d bytes", rest.MaxBody)
		}
		return nil, failf(wire.CodeBadJSON, "cannot read the body")
	}
	c.body = body
	return run(h, c)
}

// clipLen bounds what an answer quotes of a request's path or method.
const clipLen = 64

// clip is s cut to clipLen bytes (at a rune boundary where s is UTF-8).
func clip(s string) string {
	if len(s) <= clipLen {
		return s
	}
	i := clipLen
	for i > clipLen-utf8.UTFMax && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "..."
}

// decode parses the body into v: empty, not UTF-8 or not JSON is 60003, a
// field of the wrong type 70402, a list over its limit 70206.
func decode(body []byte, v any) *apiError {
	t := bytes.TrimSpace(body)
	if len(t) == 0 {
		return failf(wire.CodeBadJSON, "empty body: send a JSON object")
	}
	// encoding/json would turn each invalid byte into U+FFFD, so that
	// "\xff" and "\xfe" would both name the user "\uFFFD".
	if !utf8.Valid(t) {
		return failf(wire.CodeBadJSON, "body is not UTF-8")
	}
	if t[0] != '{' {
		return failf(wire.CodeBadJSON, "body is not a JSON object")
	}
	if err := json.Unmarshal(t, v); err != nil {
		var tm *rest.TooManyError
		if errors.As(err, &tm) {
			return failf(wire.CodeBadBatch, "%v: send 1 to %d", tm, tm.Max)
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			if te.Field != "" {
				return failf(wire.CodeBadParam, "%s: wrong type", te.Field)
			}
			return failf(wire.CodeBadParam, "wrong type of a field")
		}
		return failf(wire.CodeBadJSON, "body is not valid JSON")
	}
	return nil
}

// storeFail answers a failure of the store or the backend: 70169 when it is
// unavailable (try again), 70500 otherwise. The details go to the log only.
func (h *handler) storeFail(c *call, op string, err error) *apiError {
	h.log.Error("rest: backend failure", "op", op, "sdkappid", c.app, "err", err)
	if errors.Is(err, store.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		return failf(wire.CodeTimeout, "server busy, retry later")
	}
	return failf(wire.CodeInternal, "internal server error")
}

func ok() rest.Envelope { return rest.Envelope{ActionStatus: rest.ActionOK} }

func (h *handler) kick(c *call) (any, *apiError) {
	var req rest.KickRequest
	if e := decode(c.body, &req); e != nil {
		return nil, e
	}
	user := req.User()
	if err := wire.ValidateUserID(user); err != nil {
		return nil, failf(wire.CodeBadParam, "UserID: %v", err)
	}
	exists, err := h.b.Store().AccountExists(c.ctx, c.app, user)
	if err != nil {
		return nil, h.storeFail(c, "account exists", err)
	}
	if !exists {
		return nil, failf(wire.CodeNotImported, "account not imported")
	}
	if _, err := h.b.Kick(c.ctx, c.app, user); err != nil {
		return nil, h.storeFail(c, "kick", err)
	}
	return ok(), nil
}

func (h *handler) queryOnline(c *call) (any, *apiError) {
	var req rest.QueryOnlineStatusRequest
	if e := decode(c.body, &req); e != nil {
		return nil, e
	}
	if e := count("To_Account", len(req.ToAccount), rest.MaxOnlineQuery); e != nil {
		return nil, e
	}
	resp := rest.QueryOnlineStatusResponse{Envelope: ok(), QueryResult: []rest.OnlineResult{}, ErrorList: []rest.OnlineError{}}
	for _, user := range req.ToAccount {
		if wire.ValidateUserID(user) != nil {
			resp.ErrorList = append(resp.ErrorList, rest.OnlineError{ToAccount: user, ErrorCode: wire.CodeBadParam})
			continue
		}
		exists, err := h.b.Store().AccountExists(c.ctx, c.app, user)
		if err != nil {
			return nil, h.storeFail(c, "account exists", err)
		}
		if !exists {
			resp.ErrorList = append(resp.ErrorList, rest.OnlineError{ToAccount: user, ErrorCode: wire.CodeNotImported})
			continue
		}
		insts, err := h.b.Online(c.ctx, c.app, user)
		if err != nil {
			return nil, h.storeFail(c, "online", err)
		}
		res := rest.OnlineResult{ToAccount: user, Status: rest.StatusOffline}
		for _, in := range insts {
			switch {
			case in.Status == rest.StatusOnline:
				res.Status = rest.StatusOnline
			case in.Status == rest.StatusPushOnline && res.Status == rest.StatusOffline:
				res.Status = rest.StatusPushOnline
			}
			if req.IsNeedDetail {
				res.Detail = append(res.Detail, in)
			}
		}
		resp.QueryResult = append(resp.QueryResult, res)
	}
	return resp, nil
}

func checkAccount(a rest.AccountImportRequest) error {
	if err := wire.ValidateUserID(a.User()); err != nil {
		return err
	}
	if len(a.Nick) > rest.MaxNick {
		return fmt.Errorf("Nick over %d bytes", rest.MaxNick)
	}
	if len(a.FaceURL) > rest.MaxFaceURL {
		return fmt.Errorf("FaceUrl over %d bytes", rest.MaxFaceURL)
	}
	return nil
}

func (h *handler) importOne(c *call, a rest.AccountImportRequest) error {
	_, err := h.b.Store().ImportAccount(c.ctx, c.app, store.Account{
		UserID: a.User(), Nick: a.Nick, FaceURL: a.FaceURL, Created: h.b.Now()})
	return err
}

func (h *handler) accountImport(c *call) (any, *apiError) {
	var req rest.AccountImportRequest
	if e := decode(c.body, &req); e != nil {
		return nil, e
	}
	if err := checkAccount(req); err != nil {
		return nil, failf(wire.CodeBadParam, "%v", err)
	}
	if err := h.importOne(c, req); err != nil {
		return nil, h.storeFail(c, "import", err)
	}
	return ok(), nil
}

func (h *handler) multiImport(c *call) (any, *apiError) {
	var req rest.MultiAccountImportRequest
	if e := decode(c.body, &req); e != nil {
		return nil, e
	}
	list := req.AccountList
	if list == nil {
		for _, u := range req.Accounts {
			list = append(list, rest.AccountImportRequest{UserID: u})
		}
	}
	if e := count("AccountList", len(list), rest.MaxBatch); e != nil {
		return nil, e
	}
	resp := rest.MultiAccountImportResponse{Envelope: ok(), FailAccounts: []string{}}
	for _, a := range list {
		if checkAccount(a) != nil {
			resp.FailAccounts = append(resp.FailAccounts, a.User())
			continue
		}
		if err := h.importOne(c, a); err != nil {
			return nil, h.storeFail(c, "import", err)
		}
	}
	return resp, nil
}

// count refuses a request's list when it is empty or over max (70206).
func count(name string, n, max int) *apiError {
	if n == 0 || n > max {
		return failf(wire.CodeBadBatch, "%s has %d items: send 1 to %d", name, n, max)
	}
	return nil
}

func (h *handler) accountDelete(c *call) (any, *apiError) {
	var req rest.AccountDeleteRequest
	if e := decode(c.body, &req); e != nil {
		return nil, e
	}
	if e := count("DeleteItem", len(req.DeleteItem), rest.MaxBatch); e != nil {
		return nil, e
	}
	resp := rest.AccountDeleteResponse{Envelope: ok(), ResultItem: []rest.DeleteResult{}}
	for _, it := range req.DeleteItem {
		user := it.User()
		if err := wire.ValidateUserID(user); err != nil {
			resp.ResultItem = append(resp.ResultItem, rest.DeleteResult{ResultCode: wire.CodeBadParam, ResultInfo: err.Error(), UserID: user})
			continue
		}
		existed, err := h.deleteOne(c, user)
		if err != nil {
			return nil, h.storeFail(c, "delete", err)
		}
		if !existed {
			resp.ResultItem = append(resp.ResultItem, rest.DeleteResult{ResultCode: wire.CodeNotImported, ResultInfo: rest.InfoNotExist, UserID: user})
			continue
		}
		resp.ResultItem = append(resp.ResultItem, rest.DeleteResult{UserID: user})
	}
	return resp, nil
}

// deleteOne deletes user's account after a REST kick of it: its online
// instances get KICKED_OUT REST_API_Kick, and its A2Keys and earlier
// UserSigs are refused from then on (the watermark outlives the account),
// so a deleted account keeps no session and no credential. The kick goes
// first: when it fails nothing is deleted and the request can be retried
// whole; a retry after a failed delete kicks again, harmlessly.
func (h *handler) deleteOne(c *call, user string) (existed bool, err error) {
	exists, err := h.b.Store().AccountExists(c.ctx, c.app, user)
	if err != nil || !exists {
		return false, err
	}
	if _, err := h.b.Kick(c.ctx, c.app, user); err != nil {
		return false, err
	}
	return h.b.Store().DeleteAccount(c.ctx, c.app, user)
}

func (h *handler) accountCheck(c *call) (any, *apiError) {
	var req rest.AccountCheckRequest
	if e := decode(c.body, &req); e != nil {
		return nil, e
	}
	if e := count("CheckItem", len(req.CheckItem), rest.MaxBatch); e != nil {
		return nil, e
	}
	resp := rest.AccountCheckResponse{Envelope: ok(), ResultItem: []rest.CheckResult{}}
	for _, it := range req.CheckItem {
		user := it.User()
		if err := wire.ValidateUserID(user); err != nil {
			resp.ResultItem = append(resp.ResultItem, rest.CheckResult{UserID: user, ResultCode: wire.CodeBadParam, ResultInfo: err.Error(), AccountStatus: rest.AccountNotImported})
			continue
		}
		exists, err := h.b.Store().AccountExists(c.ctx, c.app, user)
		if err != nil {
			return nil, h.storeFail(c, "account exists", err)
		}
		status := rest.AccountNotImported
		if exists {
			status = rest.AccountImported
		}
		resp.ResultItem = append(resp.ResultItem, rest.CheckResult{UserID: user, AccountStatus: status})
	}
	return resp, nil
}
