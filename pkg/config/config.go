// Package config locates chatctl's config dir and keeps the dev app that
// `chatctl serve` creates on first start. It imports nothing of ours.
package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Dir is $CHATCTL_CONFIG_DIR, else $XDG_CONFIG_HOME/chatctl, else
// ~/.config/chatctl.
func Dir() (string, error) {
	if d := os.Getenv("CHATCTL_CONFIG_DIR"); d != "" {
		return d, nil
	}
	if d := os.Getenv("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, "chatctl"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("cannot find the config dir: %w (set CHATCTL_CONFIG_DIR)", err)
	}
	return filepath.Join(home, ".config", "chatctl"), nil
}

// DevAppFile is the file, in the config dir, holding the dev app.
const DevAppFile = "devapp.json"

// DevApp is the app `chatctl serve` runs when nothing else is configured.
type DevApp struct {
	SDKAppID  uint64 `json:"sdkappid"`
	SecretKey string `json:"secret_key"`
	Admin     string `json:"admin"`
}

// ErrNoDevApp means no dev app has been created yet.
var ErrNoDevApp = errors.New("no dev app yet: start `chatctl serve` once, or configure sdkappid and secret_key")

// LoadDevApp reads the dev app from dir.
func LoadDevApp(dir string) (DevApp, error) {
	var app DevApp
	b, err := os.ReadFile(filepath.Join(dir, DevAppFile))
	if errors.Is(err, os.ErrNotExist) {
		return app, ErrNoDevApp
	}
	if err != nil {
		return app, err
	}
	if err := json.Unmarshal(b, &app); err != nil || app.SDKAppID == 0 || app.SecretKey == "" {
		return app, fmt.Errorf("%s is corrupt; remove it to create a new dev app", filepath.Join(dir, DevAppFile))
	}
	return app, nil
}

// LoadOrCreateDevApp returns the dev app, creating it (0600 file, 0700 dir)
// with newApp when there is none. created says whether it did.
func LoadOrCreateDevApp(dir string, newApp func() DevApp) (app DevApp, created bool, err error) {
	app, err = LoadDevApp(dir)
	if !errors.Is(err, ErrNoDevApp) {
		return app, false, err
	}
	app = newApp()
	b, _ := json.MarshalIndent(app, "", "  ")
	if err := WriteFileAtomic(filepath.Join(dir, DevAppFile), append(b, '\n')); err != nil {
		return app, false, err
	}
	return app, true, nil
}

// WriteFileAtomic writes data to path as a 0600 file in a 0700 dir: a temp
// file in the same dir, fsynced, then renamed over path. On error the old
// file is untouched.
func WriteFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
