package cmd

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"chatctl/pkg/sig"

	"github.com/spf13/cobra"
)

func init() { register("sig", newSigCmd) }

const defaultSigExpire = "180d"

func newSigCmd(app *App) *cobra.Command {
	c := &cobra.Command{
		Use:   "sig",
		Short: "Mint, verify and decode UserSigs (TLSSigAPIv2)",
		Long: `Mint, verify and decode UserSigs, byte-identical to Tencent's official
TLSSigAPIv2 libraries (docs/USERSIG.md).

The secret key comes from --key-file, CHATCTL_SECRET_KEY, the config key
secret_key, or else the dev app that ` + "`chatctl serve`" + ` creates; it is never printed.
Durations (--expire) are Go durations, a number of days with a d suffix
(180d, 1d12h) or plain seconds. --now (RFC3339 or unix seconds) overrides the
clock.`,
		Args: cobra.NoArgs,
	}
	c.AddCommand(newSigGenCmd(app, nil), newSigPrivmapCmd(app, nil), newSigVerifyCmd(app, nil), newSigDecodeCmd(app, nil))
	return c
}

// sigMintFlags are the flags gen and privmap share.
type sigMintFlags struct {
	keys   keyFlags
	user   string
	expire string
	now    string
}

func (o *sigMintFlags) add(c *cobra.Command, app *App) {
	o.keys.add(c, app)
	f := c.Flags()
	f.StringVar(&o.user, "user", "", "UserID (identifier) the UserSig is for (required)")
	f.StringVar(&o.expire, "expire", defaultSigExpire, "validity: Go duration, days with d (180d) or seconds")
	f.StringVar(&o.now, "now", "", "mint time instead of the clock: RFC3339 or unix seconds")
	_ = c.MarkFlagRequired("user")
}

// resolve returns the mint parameters (without userbuf) and the mint time.
func (o *sigMintFlags) resolve(ctx context.Context, app *App) (sig.Params, time.Time, error) {
	if err := checkUserID(o.user); err != nil {
		return sig.Params{}, time.Time{}, err
	}
	expire, err := parseSigDuration(o.expire)
	if err != nil {
		return sig.Params{}, time.Time{}, exitf(ExitUsage, "--expire: %v", err)
	}
	now, err := parseSigNow(o.now)
	if err != nil {
		return sig.Params{}, time.Time{}, err
	}
	creds, err := o.keys.resolve(ctx, app)
	if err != nil {
		return sig.Params{}, time.Time{}, err
	}
	return sig.Params{SDKAppID: creds.SDKAppID, Key: creds.Key, UserID: o.user, Expire: expire}, now, nil
}

// printMinted prints a minted UserSig: the bare UserSig in text, the
// UserSig with its decoded fields in JSON.
func printMinted(app *App, s string) error {
	// Decoded as a server decodes it (its length, its document's): one
	// that no server takes, chatctl's own verify neither (exit 5), was
	// made too long by its input.
	c, err := sig.Decode(s)
	if err != nil {
		return exitf(ExitUsage, "the UserSig would be refused by any server (%v): use a shorter --userbuf or --room-str", err)
	}
	if !app.JSON() {
		_, err := fmt.Fprintln(app.Out, s)
		return err
	}
	return app.printJSON(struct {
		Sig string `json:"sig"`
		sigClaimsView
	}{s, claimsView(c)})
}

// SigMintOptions is what sig gen and sig privmap need: the checked mint
// parameters (the app's key among them) and instant.
type SigMintOptions struct {
	IO     *App
	Params sig.Params
	Now    time.Time
}

// newSigGenCmd builds sig gen; runF, when not nil, runs instead of
// sigGenRun (tests of the flags).
func newSigGenCmd(app *App, runF func(*SigMintOptions) error) *cobra.Command {
	var o sigMintFlags
	var userbuf string
	c := &cobra.Command{
		Use:   "gen --user U [--sdkappid N] [--expire 180d] [--userbuf B64]",
		Short: "Mint a UserSig (prints it on stdout; -o json adds its decoded fields)",
		Example: `  chatctl sig gen --user alice --expire 7d --key-file app.key
  CHATCTL_SECRET_KEY=... chatctl sig gen --sdkappid 1400000000 --user alice -o json`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			p, now, err := o.resolve(c.Context(), app)
			if err != nil {
				return err
			}
			if c.Flags().Changed("userbuf") {
				b, err := base64.StdEncoding.DecodeString(userbuf)
				if err != nil || len(b) == 0 {
					return exitf(ExitUsage, "--userbuf must be non-empty standard base64")
				}
				p.UserBuf = b
			}
			return runCmd(c.Context(), &SigMintOptions{IO: app, Params: p, Now: now}, runF, sigGenRun)
		},
	}
	o.add(c, app)
	c.Flags().StringVar(&userbuf, "userbuf", "", "userbuf to sign, standard base64 (GenUserSigWithBuf)")
	return c
}

func sigGenRun(_ context.Context, o *SigMintOptions) error {
	return printMinted(o.IO, sig.Gen(o.Params, o.Now))
}

// SigPrivmapOptions is what sig privmap needs.
type SigPrivmapOptions struct {
	SigMintOptions
	Room    uint32 // --room, when RoomStr is ""
	RoomStr string // --room-str
	Priv    uint32 // privilege bits
}

// newSigPrivmapCmd builds sig privmap; runF, when not nil, runs instead of
// sigPrivmapRun (tests of the flags).
func newSigPrivmapCmd(app *App, runF func(*SigPrivmapOptions) error) *cobra.Command {
	var o sigMintFlags
	var room uint32
	var roomStr string
	var priv uint32
	c := &cobra.Command{
		Use:   "privmap --user U --room N | --room-str S [--priv 255] [--expire 180d]",
		Short: "Mint a PrivateMapKey (TRTC room privileges)",
		Long: `Mint a PrivateMapKey: a UserSig whose userbuf grants privileges in one TRTC
room. Privilege bits: 1 create, 2 enter, 4 send audio, 8 receive audio,
16 send video, 32 receive video, 64 send screen, 128 receive screen; 255 all.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			numeric, str := c.Flags().Changed("room"), c.Flags().Changed("room-str")
			if numeric == str {
				return exitf(ExitUsage, "give exactly one of --room and --room-str")
			}
			if str && roomStr == "" {
				return exitf(ExitUsage, "--room-str must not be empty")
			}
			p, now, err := o.resolve(c.Context(), app)
			if err != nil {
				return err
			}
			opts := &SigPrivmapOptions{SigMintOptions: SigMintOptions{IO: app, Params: p, Now: now}, Room: room, RoomStr: roomStr, Priv: priv}
			return runCmd(c.Context(), opts, runF, sigPrivmapRun)
		},
	}
	o.add(c, app)
	f := c.Flags()
	f.Uint32Var(&room, "room", 0, "numeric room ID")
	f.StringVar(&roomStr, "room-str", "", "string room ID")
	f.Uint32Var(&priv, "priv", sig.PrivAll, "privilege bits (255: all)")
	return c
}

func sigPrivmapRun(_ context.Context, o *SigPrivmapOptions) error {
	if o.RoomStr == "" {
		return printMinted(o.IO, sig.GenPrivateMapKey(o.Params, o.Room, o.Priv, o.Now))
	}
	return printMinted(o.IO, sig.GenPrivateMapKeyWithStringRoomID(o.Params, o.RoomStr, o.Priv, o.Now))
}

// sigVerifyResult is `sig verify -o json`.
type sigVerifyResult struct {
	Valid     bool      `json:"valid"`
	Code      int       `json:"code,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	SDKAppID  uint64    `json:"sdkappid"`
	User      string    `json:"identifier"`
	Time      *int64    `json:"time,omitempty"`       // when valid, 0 too
	Expire    *int64    `json:"expire,omitempty"`     // when valid, 0 too
	ExpiresAt *jsonTime `json:"expires_at,omitempty"` // when valid
}

// SigVerifyOptions is what sig verify needs: the app's credentials, the
// UserSig (read from the argument or stdin), its user and the instant.
type SigVerifyOptions struct {
	IO    *App
	Creds appCreds
	User  string
	Sig   string
	Now   time.Time
}

// newSigVerifyCmd builds sig verify; runF, when not nil, runs instead of
// sigVerifyRun (tests of the flags).
func newSigVerifyCmd(app *App, runF func(*SigVerifyOptions) error) *cobra.Command {
	var keys keyFlags
	var user, nowFlag string
	c := &cobra.Command{
		Use:   "verify --user U [SIG|-]",
		Short: "Verify a UserSig (exit 0 valid, 5 rejected)",
		Long: `Verify a UserSig for --user with the app's key, as the server does: sdkappid
(70014), identifier (70013), expiry (70001), userbuf, signature (70009);
empty is 70002 and unparseable 70003. The UserSig is the argument, or stdin
when the argument is - or missing (prefer stdin: argv is visible to other
users). Exit 0 when valid; 5 when rejected, with the code and reason on
stderr (and in -o json on stdout). --now (RFC3339 or unix seconds) checks
expiry at another instant.`,
		Example: `  chatctl sig gen --user alice | chatctl sig verify --user alice
  chatctl sig verify --user alice --now 2030-01-01T00:00:00Z -o json - < alice.sig`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if err := checkUserID(user); err != nil {
				return err // as sig gen: exit 2, not a UserSig's 5
			}
			if isStdin(keys.keyFile) && (len(args) == 0 || args[0] == "-") {
				return usageErr(c, errors.New("stdin can give the UserSig or the key (--key-file -), not both"))
			}
			now, err := parseSigNow(nowFlag)
			if err != nil {
				return err
			}
			s, err := sigArg(c.Context(), app, args)
			if err != nil {
				return err
			}
			creds, err := keys.resolve(c.Context(), app)
			if err != nil {
				return err
			}
			return runCmd(c.Context(), &SigVerifyOptions{IO: app, Creds: creds, User: user, Sig: s, Now: now}, runF, sigVerifyRun)
		},
	}
	keys.add(c, app)
	f := c.Flags()
	f.StringVar(&user, "user", "", "UserID the UserSig must be for (required)")
	f.StringVar(&nowFlag, "now", "", "check at this instant instead of the clock: RFC3339 or unix seconds")
	_ = c.MarkFlagRequired("user")
	return c
}

func sigVerifyRun(_ context.Context, o *SigVerifyOptions) error {
	res := sigVerifyResult{SDKAppID: o.Creds.SDKAppID, User: o.User}
	info, err := sig.NewVerifier(o.Creds.SDKAppID, o.Creds.Key).Verify(o.User, o.Sig, o.Now)
	var se *sig.Error
	switch {
	case errors.As(err, &se):
		res.Code, res.Reason = se.Code, se.Reason
		return withData(err, res) // one line on stderr, exit 5
	case err != nil:
		return err
	}
	res.Valid, res.Time, res.Expire = true, &info.Time, &info.Expire
	end := jsonTime(time.Unix(info.Time+info.Expire, 0))
	res.ExpiresAt = &end
	if o.IO.JSON() {
		return o.IO.printJSON(res)
	}
	_, err = fmt.Fprintf(o.IO.Out, "valid: %s in app %d until %s\n", o.User, o.Creds.SDKAppID, stamp(time.Time(end)))
	return err
}

// SigDecodeOptions is what sig decode needs: the UserSig.
type SigDecodeOptions struct {
	IO  *App
	Sig string
}

// newSigDecodeCmd builds sig decode; runF, when not nil, runs instead of
// sigDecodeRun (tests of the flags).
func newSigDecodeCmd(app *App, runF func(*SigDecodeOptions) error) *cobra.Command {
	return &cobra.Command{
		Use:   "decode SIG|-",
		Short: "Print a UserSig's fields as JSON (no key needed; nothing is verified)",
		Long: `Print a UserSig's fields as JSON on stdout, whatever -o says: version,
identifier, sdkappid, time, expire, expires_at, userbuf (base64) and, when the
userbuf is a PrivateMapKey, its decoded layout. The signature is not checked
and not printed. The UserSig is the argument, or stdin for - or no argument.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			s, err := sigArg(c.Context(), app, args)
			if err != nil {
				return err
			}
			return runCmd(c.Context(), &SigDecodeOptions{IO: app, Sig: s}, runF, sigDecodeRun)
		},
	}
}

func sigDecodeRun(_ context.Context, o *SigDecodeOptions) error {
	claims, err := sig.Decode(o.Sig)
	if err != nil {
		return err
	}
	return o.IO.printJSON(claimsView(claims))
}

// sigClaimsView is the JSON form of decoded claims.
type sigClaimsView struct {
	Version    string       `json:"version"`
	Identifier string       `json:"identifier"`
	SDKAppID   uint64       `json:"sdkappid"`
	Time       int64        `json:"time"`
	TimeRFC    jsonTime     `json:"time_rfc3339"`
	Expire     int64        `json:"expire"`
	ExpiresAt  jsonTime     `json:"expires_at"` // null when time+expire overflows
	UserBuf    *string      `json:"userbuf,omitempty"`
	PrivMap    *sigPrivView `json:"privmap,omitempty"`
}

type sigPrivView struct {
	sig.PrivMap
	ExpireAtRFC jsonTime `json:"expire_at_rfc3339"`
}

func claimsView(c *sig.Claims) sigClaimsView {
	v := sigClaimsView{Version: c.Version, Identifier: c.Identifier, SDKAppID: c.SDKAppID,
		Time: c.Time, TimeRFC: jsonTime(time.Unix(c.Time, 0)), Expire: c.Expire}
	if end, ok := c.ExpiresAt(); ok {
		v.ExpiresAt = jsonTime(end)
	}
	if c.HasUserBuf {
		s := base64.StdEncoding.EncodeToString(c.UserBuf)
		v.UserBuf = &s
	}
	if m, ok := c.PrivMap(); ok {
		v.PrivMap = &sigPrivView{m, jsonTime(time.Unix(int64(m.ExpireAt), 0))}
	}
	return v
}

// sigArg is the UserSig from the argument, or from stdin for "-" or none.
func sigArg(ctx context.Context, app *App, args []string) (string, error) {
	if len(args) == 1 && args[0] != "-" {
		return args[0], nil
	}
	b, err := readInput(ctx, func() ([]byte, error) { return readAllLimit(app.In, 1<<20) })
	if err != nil && ctx.Err() != nil {
		return "", err // stopped, not a bad input
	}
	if err != nil {
		return "", exitf(ExitFailure, "reading the UserSig from stdin: %v", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// parseSigDuration reads a validity in seconds: plain seconds ("86400",
// "-1"), a Go duration ("12h", "3s") or days with d, optionally followed by
// a Go duration ("180d", "1d12h").
func parseSigDuration(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty duration")
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, nil
	}
	var days int64
	neg := strings.HasPrefix(s, "-")
	rest := strings.TrimPrefix(s, "-")
	if i := strings.IndexByte(rest, 'd'); i >= 0 {
		n, err := strconv.ParseInt(rest[:i], 10, 64)
		if err != nil || n < 0 || n > 1<<40 {
			return 0, fmt.Errorf("%q is not a duration (like 180d, 12h or 3600)", s)
		}
		days, rest = n, rest[i+1:]
	}
	var d time.Duration
	if rest != "" {
		var err error
		if d, err = time.ParseDuration(rest); err != nil || d < 0 {
			return 0, fmt.Errorf("%q is not a duration (like 180d, 12h or 3600)", s)
		}
		if d%time.Second != 0 {
			return 0, fmt.Errorf("%q is not a whole number of seconds", s)
		}
	}
	secs := days*86400 + int64(d/time.Second)
	if neg {
		secs = -secs
	}
	return secs, nil
}

// parseSigNow reads --now: RFC3339 or unix seconds; empty is the clock.
func parseSigNow(s string) (time.Time, error) {
	if s == "" {
		return time.Now(), nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 {
			return time.Time{}, exitf(ExitUsage, "--now %q: before 1970", s)
		}
		return time.Unix(n, 0), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, exitf(ExitUsage, "--now %q: want RFC3339 (2030-01-01T00:00:00Z) or unix seconds", s)
	}
	if t.Unix() < 0 {
		// A UserSig's time is unsigned seconds since 1970.
		return time.Time{}, exitf(ExitUsage, "--now %q: before 1970", s)
	}
	return t, nil
}
