package cmd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"chatctl/pkg/client"
	"chatctl/pkg/config"
	"chatctl/pkg/rest"
	"chatctl/pkg/wire"

	"github.com/spf13/cobra"
)

func init() { register("admin", newAdminCmd) }

// AdminOptions is what every admin subcommand needs: where it prints, and
// the REST client that RunE builds from the app's credentials and the REST
// URL. Each subcommand's options embed it with their arguments and flags.
type AdminOptions struct {
	IO   *App
	REST *rest.Client
	Name string // the command for messages: "admin kick"

	answers []json.RawMessage // for -o json: the JSON answers, in order
}

// adminFlags are the flags every admin subcommand shares.
type adminFlags struct {
	app  *App
	keys keyFlags
	wait serverWait
}

func newAdminCmd(app *App) *cobra.Command {
	c := &cobra.Command{
		Use:   "admin",
		Short: "Call the REST API as the app administrator: kick, online, import, check, delete",
		Long: `Call the server REST API (docs/REST.md) as the app administrator, with a
UserSig minted from the app's secret key for each call (never printed).

The REST URL is --rest-url (config rest_url, env CHATCTL_REST_URL:
http(s)://host[:port][/prefix], no query, fragment or user info), else the
http(s) twin of --endpoint (ws://host:port -> http://host:port), so by default
the local "chatctl serve"; with --endpoint cloud, the REST domain of the
SDKAppID's data center (docs/CLOUD.md).

Text output is one line per user, tab-separated; -o json prints the server's
JSON answer as one document (the answers of a command that needed several
requests merged: their arrays joined), with "error" added on failure. A FAIL answer exits 1, or 5
when the server rejected the admin UserSig; an unreachable server exits 6.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return usageErr(c, errors.New("missing subcommand")) },
	}
	c.AddCommand(
		newAdminKickCmd(app, nil),
		newAdminOnlineCmd(app, nil),
		newAdminImportCmd(app, nil),
		newAdminCheckCmd(app, nil),
		newAdminDeleteCmd(app, nil),
	)
	return c
}

// add gives a subcommand the key flags and --rest-url.
func (f *adminFlags) add(c *cobra.Command) {
	f.keys.add(c, f.app)
	c.Flags().String("rest-url", "", "base URL of the REST API, http(s)://HOST[:PORT][/PREFIX] (default: derived from --endpoint)")
	f.app.bind(c.Flags().Lookup("rest-url"), "rest_url")
	f.wait.flag(c, rest.DefaultTimeout.String()+" for each request")
}

// runAdmin runs an admin subcommand: build completes the options that
// every subcommand shares, which are resolved within --timeout too (a key
// file that is a FIFO held it forever).
func runAdmin[T any](c *cobra.Command, f *adminFlags, build func(AdminOptions) *T, runF func(*T) error, run func(context.Context, *T) error) error {
	return runAskingWith(c, f.wait, "", func(ctx context.Context) (*T, error) {
		ao, err := f.options(ctx, c)
		return build(ao), err
	}, runF, run)
}

// options resolves the app's credentials and the REST URL into the
// options every admin subcommand shares.
func (f *adminFlags) options(ctx context.Context, c *cobra.Command) (AdminOptions, error) {
	cli, err := f.client(ctx, c)
	if err != nil {
		return AdminOptions{}, err
	}
	return AdminOptions{IO: f.app, REST: cli, Name: strings.TrimPrefix(c.CommandPath(), c.Root().Name()+" ")}, nil
}

// document runs work and, with -o json, prints the server's answers as
// the run's one document (on success), or attaches them to its error.
func (o *AdminOptions) document(work func() error) error {
	if !o.IO.JSON() {
		return o.IO.checkedText(work)
	}
	err := work()
	doc := mergeAnswers(o.answers)
	switch {
	case err == nil && doc == nil:
		return o.IO.printJSON(struct{}{})
	case err == nil:
		return o.IO.printJSON(doc)
	case doc != nil:
		return withData(err, doc)
	}
	return err
}

// mergeAnswers joins REST answers into one object: the arrays of each key
// (QueryResult, ResultItem, ErrorList, FailAccounts) concatenated, any
// other key as the last answer has it; nil when there is none. The keys
// chatctl's document owns (schema_version, error) are dropped: a server
// that sent them would give the document two of each, and a script
// reading the last one the server's.
func mergeAnswers(answers []json.RawMessage) json.RawMessage {
	if len(answers) == 0 {
		return nil
	}
	merged := map[string]json.RawMessage{}
	for _, a := range answers {
		var m map[string]json.RawMessage
		if json.Unmarshal(a, &m) != nil {
			continue
		}
		delete(m, "schema_version")
		delete(m, "error")
		for k, v := range m {
			var next, prev []json.RawMessage
			if json.Unmarshal(v, &next) == nil && json.Unmarshal(merged[k], &prev) == nil {
				v, _ = json.Marshal(append(prev, next...))
			}
			merged[k] = v
		}
	}
	b, _ := json.Marshal(merged)
	return b
}

// AdminKickOptions is what admin kick needs.
type AdminKickOptions struct {
	AdminOptions
	User string
}

// newAdminKickCmd builds admin kick; runF, when not nil, runs instead of
// adminKickRun (tests of the flags).
func newAdminKickCmd(app *App, runF func(*AdminKickOptions) error) *cobra.Command {
	f := &adminFlags{app: app}
	c := &cobra.Command{
		Use:   "kick USER",
		Short: "Kick USER everywhere: online instances get REST_API_Kick, earlier UserSigs stop working",
		Example: `  chatctl admin kick alice
  chatctl admin kick alice -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			// One USER, checked here as login checks its own (exit 2);
			// the batch commands report each user's 70402 as the
			// server answers it.
			if err := checkUserID(args[0]); err != nil {
				return err
			}
			return runAdmin(c, f, func(ao AdminOptions) *AdminKickOptions {
				return &AdminKickOptions{AdminOptions: ao, User: args[0]}
			}, runF, adminKickRun)
		},
	}
	f.add(c)
	return c
}

func adminKickRun(ctx context.Context, o *AdminKickOptions) error {
	return o.document(func() error {
		raw, err := o.REST.Do(ctx, rest.CmdKick, rest.KickRequest{UserID: o.User}, nil)
		if err := o.answer(raw, err); err != nil {
			return err
		}
		if !o.IO.JSON() {
			fmt.Fprintf(o.IO.Out, "%s\tKicked\n", printable(o.User, maxField))
		}
		return nil
	})
}

// AdminOnlineOptions is what admin online needs.
type AdminOnlineOptions struct {
	AdminOptions
	Users  []string
	Detail bool // --detail
}

// newAdminOnlineCmd builds admin online; runF, when not nil, runs instead
// of adminOnlineRun (tests of the flags).
func newAdminOnlineCmd(app *App, runF func(*AdminOnlineOptions) error) *cobra.Command {
	f := &adminFlags{app: app}
	var detail bool
	c := &cobra.Command{
		Use:   "online USER...",
		Short: "Show whether users are Online, PushOnline or Offline (--detail: per platform)",
		Long: `Show each user's login state, one line per user in the order given:
  alice	Online
  bob	Offline
  carol	NotImported
With --detail a third column lists the online instances, e.g.
  alice	Online	Web:Online,iPhone:PushOnline`,
		Example: `  chatctl admin online alice bob --detail`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, users []string) error {
			return runAdmin(c, f, func(ao AdminOptions) *AdminOnlineOptions {
				return &AdminOnlineOptions{AdminOptions: ao, Users: users, Detail: detail}
			}, runF, adminOnlineRun)
		},
	}
	f.add(c)
	c.Flags().BoolVar(&detail, "detail", false, "list the online instances per platform")
	return c
}

func adminOnlineRun(ctx context.Context, o *AdminOnlineOptions) error {
	return o.document(func() error {
		var failed failures
		for _, chunk := range chunks(o.Users, rest.MaxOnlineQuery) {
			var resp rest.QueryOnlineStatusResponse
			raw, err := o.REST.Do(ctx, rest.CmdQueryOnlineStatus,
				rest.QueryOnlineStatusRequest{IsNeedDetail: rest.Flag(o.Detail), ToAccount: chunk}, &resp)
			if err := o.answer(raw, err); err != nil {
				return err
			}
			ans := newAnswers(chunk)
			lines := map[string]string{}
			for _, r := range resp.QueryResult {
				if !ans.take(r.ToAccount) {
					continue
				}
				line := printable(r.ToAccount, maxField) + "\t" + printable(r.Status, maxField)
				if o.Detail && len(r.Detail) > 0 {
					var d []string
					for _, p := range r.Detail {
						d = append(d, printable(p.Platform, maxField)+":"+printable(p.Status, maxField))
					}
					line += "\t" + strings.Join(d, ",")
				}
				lines[r.ToAccount] = line
			}
			for _, e := range resp.ErrorList {
				if !ans.take(e.ToAccount) {
					continue
				}
				if e.ErrorCode == wire.CodeNotImported {
					lines[e.ToAccount] = printable(e.ToAccount, maxField) + "\t" + rest.AccountNotImported
					continue
				}
				failed.refused(e.ToAccount, e.ErrorCode, "")
			}
			failed.unanswered(ans)
			if !o.IO.JSON() {
				for _, u := range chunk {
					if l, ok := lines[u]; ok {
						fmt.Fprintln(o.IO.Out, l)
					}
				}
			}
		}
		return o.itemFailures(failed)
	})
}

// AdminImportOptions is what admin import needs.
type AdminImportOptions struct {
	AdminOptions
	Users         []string
	Nick, FaceURL string // --nick, --face-url: one USER only
	Batch         bool   // --batch: several users (multiaccount_import)
}

// newAdminImportCmd builds admin import; runF, when not nil, runs instead
// of adminImportRun (tests of the flags).
func newAdminImportCmd(app *App, runF func(*AdminImportOptions) error) *cobra.Command {
	f := &adminFlags{app: app}
	var nick, face string
	var batch bool
	c := &cobra.Command{
		Use:   "import USER [--nick N] [--face-url U] | import --batch USER...",
		Short: "Import accounts (account_import; --batch: multiaccount_import, 100 per request)",
		Example: `  chatctl admin import alice --nick Alice
  chatctl admin import --batch alice bob carol`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, users []string) error {
			if !batch {
				if len(users) != 1 {
					return usageErr(c, errors.New("import takes one USER; use --batch for several"))
				}
				if err := checkUserID(users[0]); err != nil {
					return err
				}
			} else if nick != "" || face != "" {
				return usageErr(c, errors.New("--nick and --face-url import one USER; they do not go with --batch"))
			}
			return runAdmin(c, f, func(ao AdminOptions) *AdminImportOptions {
				return &AdminImportOptions{AdminOptions: ao, Users: users, Nick: nick, FaceURL: face, Batch: batch}
			}, runF, adminImportRun)
		},
	}
	f.add(c)
	c.Flags().StringVar(&nick, "nick", "", "nickname")
	c.Flags().StringVar(&face, "face-url", "", "avatar URL")
	c.Flags().BoolVar(&batch, "batch", false, "import several users (multiaccount_import)")
	return c
}

func adminImportRun(ctx context.Context, o *AdminImportOptions) error {
	return o.document(func() error {
		if !o.Batch {
			raw, err := o.REST.Do(ctx, rest.CmdAccountImport,
				rest.AccountImportRequest{UserID: o.Users[0], Nick: o.Nick, FaceURL: o.FaceURL}, nil)
			if err := o.answer(raw, err); err != nil {
				return err
			}
			if !o.IO.JSON() {
				fmt.Fprintf(o.IO.Out, "%s\t%s\n", printable(o.Users[0], maxField), rest.AccountImported)
			}
			return nil
		}
		var failed failures
		for _, chunk := range chunks(o.Users, rest.MaxBatch) {
			var resp rest.MultiAccountImportResponse
			req := rest.MultiAccountImportRequest{}
			for _, u := range chunk {
				req.AccountList = append(req.AccountList, rest.AccountImportRequest{UserID: u})
			}
			raw, err := o.REST.Do(ctx, rest.CmdMultiAccountImport, req, &resp)
			if err := o.answer(raw, err); err != nil {
				return err
			}
			ans := newAnswers(chunk) // the users that failed
			for _, u := range resp.FailAccounts {
				if ans.take(u) {
					failed.add(u, "not imported (bad UserID?)")
				}
			}
			if !o.IO.JSON() {
				for _, u := range chunk {
					if !ans.got[u] {
						fmt.Fprintf(o.IO.Out, "%s\t%s\n", printable(u, maxField), rest.AccountImported)
					}
				}
			}
		}
		return o.itemFailures(failed)
	})
}

// AdminUsersOptions is what admin check and admin delete need.
type AdminUsersOptions struct {
	AdminOptions
	Users []string
}

// newAdminCheckCmd builds admin check; runF, when not nil, runs instead of
// adminCheckRun (tests of the flags).
func newAdminCheckCmd(app *App, runF func(*AdminUsersOptions) error) *cobra.Command {
	return newAdminUsersCmd(app, runF, adminCheckRun, &cobra.Command{
		Use:     "check USER...",
		Short:   "Show whether users are Imported or NotImported (account_check, 100 per request)",
		Example: `  chatctl admin check alice bob`,
	})
}

// newAdminDeleteCmd builds admin delete; runF, when not nil, runs instead
// of adminDeleteRun (tests of the flags).
func newAdminDeleteCmd(app *App, runF func(*AdminUsersOptions) error) *cobra.Command {
	return newAdminUsersCmd(app, runF, adminDeleteRun, &cobra.Command{
		Use:     "delete USER...",
		Short:   "Delete accounts (account_delete, 100 per request)",
		Example: `  chatctl admin delete alice bob`,
	})
}

// newAdminUsersCmd completes c, a subcommand of USER... and the shared
// flags only, which runs run (or runF).
func newAdminUsersCmd(app *App, runF func(*AdminUsersOptions) error, run func(context.Context, *AdminUsersOptions) error, c *cobra.Command) *cobra.Command {
	f := &adminFlags{app: app}
	c.Args = cobra.MinimumNArgs(1)
	c.RunE = func(c *cobra.Command, users []string) error {
		return runAdmin(c, f, func(ao AdminOptions) *AdminUsersOptions {
			return &AdminUsersOptions{AdminOptions: ao, Users: users}
		}, runF, run)
	}
	f.add(c)
	return c
}

func adminCheckRun(ctx context.Context, o *AdminUsersOptions) error {
	return o.eachUser(func(chunk []string) ([]userResult, error) {
		var resp rest.AccountCheckResponse
		raw, err := o.REST.Do(ctx, rest.CmdAccountCheck, rest.AccountCheckRequest{CheckItem: refs(chunk)}, &resp)
		if err := o.answer(raw, err); err != nil {
			return nil, err
		}
		out := make([]userResult, len(resp.ResultItem))
		for i, r := range resp.ResultItem {
			out[i] = userResult{r.UserID, r.ResultCode, r.ResultInfo, r.AccountStatus}
		}
		return out, nil
	})
}

func adminDeleteRun(ctx context.Context, o *AdminUsersOptions) error {
	return o.eachUser(func(chunk []string) ([]userResult, error) {
		var resp rest.AccountDeleteResponse
		raw, err := o.REST.Do(ctx, rest.CmdAccountDelete, rest.AccountDeleteRequest{DeleteItem: refs(chunk)}, &resp)
		if err := o.answer(raw, err); err != nil {
			return nil, err
		}
		out := make([]userResult, len(resp.ResultItem))
		for i, r := range resp.ResultItem {
			out[i] = userResult{r.UserID, r.ResultCode, r.ResultInfo, "Deleted"}
		}
		return out, nil
	})
}

// userResult is one user's item of a batch answer: Code and Info when it
// failed, else the word printed beside it.
type userResult struct {
	User string
	Code int
	Info string
	OK   string
}

// eachUser asks ask for o.Users, rest.MaxBatch at a time, prints a line
// per user served and reports the rest as item failures.
func (o *AdminUsersOptions) eachUser(ask func(chunk []string) ([]userResult, error)) error {
	return o.document(func() error {
		var failed failures
		for _, chunk := range chunks(o.Users, rest.MaxBatch) {
			res, err := ask(chunk)
			if err != nil {
				return err
			}
			ans := newAnswers(chunk)
			for _, r := range res {
				if !ans.take(r.User) {
					continue
				}
				if r.Code != 0 {
					failed.refused(r.User, r.Code, r.Info)
					continue
				}
				if !o.IO.JSON() {
					fmt.Fprintf(o.IO.Out, "%s\t%s\n", printable(r.User, maxField), printable(r.OK, maxField))
				}
			}
			failed.unanswered(ans)
		}
		return o.itemFailures(failed)
	})
}

// client resolves the app's credentials and the REST URL.
func (f *adminFlags) client(ctx context.Context, c *cobra.Command) (*rest.Client, error) {
	creds, err := f.keys.resolve(ctx, f.app)
	if err != nil {
		return nil, err
	}
	if err := wire.ValidateUserID(creds.Admin); err != nil {
		// Else it would reach the server, which refuses it (60004): a bad
		// value of ours, exit 2, naming where it came from.
		from := f.app.source("admin")
		if !f.app.V.IsSet("admin") {
			from = filepath.Join(f.app.ConfigDir(), config.DevAppFile)
		}
		return nil, exitf(ExitUsage, "the admin in %s: %v", from, err)
	}
	endpoint := f.app.Endpoint()
	if endpoint == client.EndpointCloud {
		endpoint = "https://" + client.Cloud(creds.SDKAppID).REST
	}
	base, err := restBaseURL(f.app.V.GetString("rest_url"), f.app.source("rest_url"), endpoint)
	if err != nil {
		return nil, usageErr(c, err)
	}
	return &rest.Client{BaseURL: base, SDKAppID: creds.SDKAppID, Admin: creds.Admin, Key: creds.Key}, nil
}

// restBaseURL is restURL if set, else the http(s) twin of the WebSocket
// endpoint: same host and port, path dropped. from names where restURL came
// from (App.source). restURL must be http:// or https://, a host, an
// optional port and an optional path (a reverse proxy's prefix; trailing
// "/" dropped): the request URL is restURL + "/v4/…?sdkappid=…&usersig=…",
// so a query or fragment would carry the command and the admin UserSig in
// itself. User info is refused too, and never shown (a password).
func restBaseURL(restURL, from, endpoint string) (string, error) {
	if restURL != "" {
		bad := func(why string) error {
			return fmt.Errorf("%s %.200q: %s; want http(s)://host[:port][/prefix]", from, client.HideUserInfo(restURL), why)
		}
		u, err := url.Parse(restURL)
		switch {
		case !strings.Contains(restURL, "://"):
			return "", bad("no scheme")
		case err != nil:
			return "", bad("not a URL")
		case u.Scheme != "http" && u.Scheme != "https":
			return "", bad(fmt.Sprintf("scheme %.40q", u.Scheme))
		case u.User != nil:
			return "", bad("user info")
		case u.Hostname() == "":
			return "", bad("no host")
		case u.RawQuery != "" || u.ForceQuery:
			return "", bad("a query")
		case u.Fragment != "" || strings.Contains(restURL, "#"):
			return "", bad("a fragment")
		}
		if port := u.Port(); port != "" {
			if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
				return "", bad(fmt.Sprintf("port %.20q", port))
			}
		}
		return u.Scheme + "://" + u.Host + strings.TrimRight(u.EscapedPath(), "/"), nil
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("cannot derive the REST URL from endpoint %q: use --rest-url", endpoint)
	}
	switch u.Scheme {
	case "ws", "http":
		return "http://" + u.Host, nil
	case "wss", "https":
		return "https://" + u.Host, nil
	}
	return "", fmt.Errorf("cannot derive the REST URL from endpoint %q (scheme %q): use --rest-url", endpoint, u.Scheme)
}

// answer keeps the raw answer for -o json and turns a failed call into the
// command's error: a FAIL answer exits 1 (5 for a rejected UserSig), no
// answer exits 6.
func (o *AdminOptions) answer(raw []byte, err error) error {
	if o.IO.JSON() && json.Valid(raw) && bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) {
		o.answers = append(o.answers, json.RawMessage(raw))
	}
	if err == nil {
		return nil
	}
	name := o.Name
	var re *rest.Error
	if errors.As(err, &re) {
		return because(err, "%s: %d %s", name, re.Code, codeText(re.Code, re.Info))
	}
	var ue *rest.UnreachableError
	if errors.As(err, &ue) {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return because(err, "%s: %v (is the server running? start it with `chatctl serve`, or point --rest-url at one)", name, err)
		}
		if ranOut(err) {
			return because(err, "%s: %s did not answer in time", name, ue.URL)
		}
		return because(err, "%s: %v", name, err)
	}
	return exitf(ExitFailure, "%s: %v", name, err)
}

// maxField bounds one field of the server's answer in text output (a
// UserID is at most 32 bytes; a hostile server may send more).
const maxField = 64

// failures is a batch's item failures, a line each: the user, quoted
// and cut to maxField, and why.
type failures []string

func (f *failures) add(user, why string) {
	*f = append(*f, fmt.Sprintf("%.*q: %s", maxField, user, why))
}

// refused is a user the server answered with an error code.
func (f *failures) refused(user string, code int, info string) {
	f.add(user, fmt.Sprintf("%d %s", code, codeText(code, info)))
}

// answers are one request's users (a chunk: each once) as the server's
// answer names them. Only the first answer about a user asked counts: one
// about a user nobody asked for, or a second one, is a broken or hostile
// server's, and was printed (as Imported, Deleted) or failed the run.
type answers struct {
	chunk []string
	got   map[string]bool // asked: answered yet
}

func newAnswers(chunk []string) *answers {
	a := &answers{chunk: chunk, got: make(map[string]bool, len(chunk))}
	for _, u := range chunk {
		a.got[u] = false
	}
	return a
}

// take reports whether an answer about user counts, and records it.
func (a *answers) take(user string) bool {
	if got, asked := a.got[user]; !asked || got {
		return false
	}
	a.got[user] = true
	return true
}

// unanswered adds the users asked that a's answer left out, in the order
// asked: an OK answer that leaves a user out said nothing of it, which a
// script must not read as success (or, for online, as "no such line").
func (f *failures) unanswered(a *answers) {
	for _, u := range a.chunk {
		if !a.got[u] {
			f.add(u, "not in the server's answer")
		}
	}
}

// itemFailures reports the users a batch could not serve, one line each on
// stderr, and exits 1 when there are any.
func (o *AdminOptions) itemFailures(failed failures) error {
	if len(failed) == 0 {
		return nil
	}
	name := o.Name
	for _, f := range failed[:len(failed)-1] {
		fmt.Fprintln(o.IO.Err, "chatctl: "+oneLine(name+": "+f))
	}
	return exitf(ExitFailure, "%s: %s", name, failed[len(failed)-1])
}

// codeText is info, or our words for a code when info is empty or one of
// Tencent's internal names.
func codeText(code int, info string) string {
	if info != "" && !strings.HasPrefix(info, "Err_") {
		return info
	}
	switch code {
	case wire.CodeNotImported:
		return "account not imported"
	case wire.CodeBadParam:
		return "bad parameter"
	}
	return info
}

// chunks is users, each once in the order given, in requests of at most n:
// a user named twice was asked twice, and the second delete of it failed
// 70107 after the first had done what was asked (the second CLI pass).
func chunks(users []string, n int) [][]string {
	seen := make(map[string]bool, len(users))
	users = slices.DeleteFunc(slices.Clone(users), func(u string) bool {
		dup := seen[u]
		seen[u] = true
		return dup
	})
	var out [][]string
	for len(users) > n {
		out = append(out, users[:n])
		users = users[n:]
	}
	return append(out, users)
}

func refs(users []string) []rest.UserRef {
	r := make([]rest.UserRef, len(users))
	for i, u := range users {
		r[i] = rest.UserRef{UserID: u}
	}
	return r
}
