package cmd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"unicode"

	"chatctl/pkg/config"

	"github.com/spf13/cobra"
)

// appCreds are an app's SDKAppID, secret key and admin identifier.
type appCreds struct {
	SDKAppID uint64
	Key      string
	Admin    string
}

// keyFlags are the flags of a command that needs the app's secret key.
type keyFlags struct {
	keyFile string
	key     string // bare argv value: allowed, with a warning
}

func (k *keyFlags) add(c *cobra.Command, app *App) {
	f := c.Flags()
	f.StringVar(&k.keyFile, "key-file", "", "file holding the app's secret key (- for stdin)")
	f.StringVar(&k.key, "key", "", "the secret key itself (visible to other users in ps; prefer --key-file or CHATCTL_SECRET_KEY)")
	f.Uint64("sdkappid", 0, "SDKAppID (default: the configured app, else the dev app of chatctl serve)")
	app.bind(f.Lookup("sdkappid"), "sdkappid")
}

// resolve finds the app's credentials: --key-file, --key, CHATCTL_SECRET_KEY
// or config secret_key, else the dev app created by `chatctl serve`.
func (k *keyFlags) resolve(ctx context.Context, app *App) (appCreds, error) {
	id, err := app.sdkAppID()
	if err != nil {
		return appCreds{}, err
	}
	admin, err := app.oneValue("admin")
	if err != nil {
		return appCreds{}, err
	}
	c := appCreds{SDKAppID: id, Admin: admin}
	switch {
	case k.keyFile != "":
		key, err := readSecret(ctx, app, k.keyFile, "the secret key")
		if err != nil {
			return c, err
		}
		c.Key = key
	case k.key != "":
		app.warnf("--key puts the secret key in argv, where other users of this machine can read it; prefer --key-file or CHATCTL_SECRET_KEY")
		if c.Key, err = secretValue(k.key, "--key"); err != nil {
			return c, err
		}
		if c.Key == "" {
			// Not the dev app's key in its place, without a word.
			return c, exitf(ExitUsage, "--key is empty")
		}
	default:
		if c.Key, err = app.configSecret("secret_key"); err != nil {
			return c, err
		}
	}
	if c.Key == "" || c.SDKAppID == 0 {
		dev, err := config.LoadDevApp(app.ConfigDir())
		if errors.Is(err, config.ErrNoDevApp) {
			if c.Key == "" {
				return c, exitf(ExitUsage, "no secret key: use --key-file or CHATCTL_SECRET_KEY, or start `chatctl serve` once to create the dev app")
			}
			return c, exitf(ExitUsage, "no SDKAppID: use --sdkappid or CHATCTL_SDKAPPID")
		}
		if err != nil {
			return c, err
		}
		if c.SDKAppID == 0 {
			c.SDKAppID = dev.SDKAppID
		}
		if c.Key == "" {
			if c.SDKAppID != dev.SDKAppID {
				return c, exitf(ExitUsage, "no secret key for SDKAppID %d: use --key-file or CHATCTL_SECRET_KEY", c.SDKAppID)
			}
			c.Key = dev.SecretKey
		}
		if c.Admin == "" {
			c.Admin = dev.Admin
		}
	}
	if c.Admin == "" {
		c.Admin = "administrator"
	}
	return c, nil
}

// secretValue is a secret key or UserSig as given, without the spaces and
// line ends around it: neither holds any, and `$(cat key)`, a CRLF file or
// a YAML block scalar adds them. readSecret reads files the same way, so
// every source of one secret gives the same bytes. One with white space or
// a control character inside (a file of two lines, a key and a comment) is
// exit 2 naming from: taken whole it signed UserSigs the server refused.
func secretValue(s, from string) (string, error) {
	s = strings.TrimSpace(s)
	if i := strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }); i >= 0 {
		return "", exitf(ExitUsage, "%s holds white space or a control character inside (byte %d; a second line?): a secret key or UserSig holds none", from, i)
	}
	return s, nil
}

// configSecret is key's secret (secret_key, user_sig) from the environment
// or config.yaml, as secretValue gives it; "" when neither sets it. One set
// to nothing but spaces is exit 2: a CI secret that came out empty would
// otherwise mean the dev app's key, or a minted UserSig, without a word.
func (a *App) configSecret(key string) (string, error) {
	v, err := a.oneValue(key)
	if err != nil {
		return "", err
	}
	if v, err := secretValue(v, a.source(key)); err != nil || v != "" {
		return v, err
	}
	if _, env := os.LookupEnv(a.envName(key)); env || a.inConfig(key) {
		return "", exitf(ExitUsage, "%s is set but empty", a.source(key))
	}
	return "", nil
}

func (c appCreds) String() string { return fmt.Sprintf("app %d", c.SDKAppID) }
