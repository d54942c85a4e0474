// Package config locates chatctl's config dir and keeps the dev app that
// `chatctl serve` creates on first start. It imports nothing of ours.
package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// Dir is $CHATCTL_CONFIG_DIR, else $XDG_CONFIG_HOME/chatctl, else
// ~/.config/chatctl. A relative XDG_CONFIG_HOME is ignored, as the XDG
// spec says: the dir would depend on where the command runs.
func Dir() (string, error) {
	if d := os.Getenv("CHATCTL_CONFIG_DIR"); d != "" {
		return d, nil
	}
	if d := os.Getenv("XDG_CONFIG_HOME"); filepath.IsAbs(d) {
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

// maxDevAppFile bounds what LoadDevApp reads: the file is a hundred bytes.
const maxDevAppFile = 64 << 10

// ErrTooLarge and ErrNotRegular are wrapped by ReadRegular's errors for a
// file over its bound, and for a FIFO, device or directory.
var (
	ErrTooLarge   = errors.New("file too large")
	ErrNotRegular = errors.New("not a regular file")
)

// ReadRegular reads the regular file path, of at most max bytes. A FIFO, a
// device or a directory put in its place is an error at once (a FIFO is
// opened O_NONBLOCK: a blocking open would wait for a writer, past any
// signal), and so is a larger file, before more than max+1 bytes are read.
func ReadRegular(path string, max int) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return nil, err
	} else if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is %w", path, ErrNotRegular)
	}
	b, err := io.ReadAll(io.LimitReader(f, int64(max)+1))
	if err != nil {
		return nil, err
	}
	if len(b) > max {
		return nil, fmt.Errorf("%s is over %d bytes: %w", path, max, ErrTooLarge)
	}
	return b, nil
}

// LoadDevApp reads the dev app from dir. Only a regular file of at most
// 64 KiB is read: a FIFO, a device or a huge file put in its place is an
// error, not a hang or the process's memory.
func LoadDevApp(dir string) (DevApp, error) {
	var app DevApp
	path := filepath.Join(dir, DevAppFile)
	b, err := ReadRegular(path, maxDevAppFile)
	if errors.Is(err, os.ErrNotExist) {
		return app, ErrNoDevApp
	}
	if errors.Is(err, ErrTooLarge) {
		return app, fmt.Errorf("%w; remove it to create a new dev app", err)
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
// with newApp when there is none. created says whether it did. Several
// processes starting at once on one config dir all get the same app: the
// file is created only if absent (a link, which fails when it exists), and
// the loser of the race reads the winner's. Renaming over it instead let
// each one run with its own key while only the last one's was on disk.
func LoadOrCreateDevApp(dir string, newApp func() DevApp) (app DevApp, created bool, err error) {
	app, err = LoadDevApp(dir)
	if !errors.Is(err, ErrNoDevApp) {
		return app, false, err
	}
	app = newApp()
	b, _ := json.MarshalIndent(app, "", "  ")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return app, false, err
	}
	err = writeFile(filepath.Join(dir, DevAppFile), append(b, '\n'), func(tmp, path string) error {
		return os.Link(tmp, path)
	})
	if errors.Is(err, os.ErrExist) {
		app, err = LoadDevApp(dir)
		return app, false, err
	}
	if err != nil {
		return app, false, err
	}
	return app, true, nil
}

// WriteLockedFile writes data to path as a 0600 file: a temp
// file in the same dir, fsynced, then renamed over path. On error the old
// file is untouched. path is the file itself: a symlink's target, which
// the caller resolved (Resolved) to lock it, is written through, as
// docker's config writer does (renaming over the link would replace it
// with a regular file and leave its target stale).
//
// The caller holds path's lock, so no other writer of path is active: the
// temp files left beside it by writers that died before their rename (they
// may hold secrets) are deleted first. That lock is a file beside path,
// so its dir exists: no dir is created here, and a link to a dir that is
// not there is an error, not a dir made where the link says.
func WriteLockedFile(path string, data []byte) error {
	stale, _ := filepath.Glob(filepath.Join(filepath.Dir(path), tempPattern(path)))
	for _, f := range stale {
		os.Remove(f)
	}
	return writeFile(path, data, os.Rename)
}

// tempPattern names writeFile's temp files beside path.
func tempPattern(path string) string { return "." + filepath.Base(path) + ".tmp*" }

// Resolved is path with its symlinks followed. A symlink whose target does
// not exist yet (a dangling link to a file a first write will create) is
// followed too; path itself when it is no symlink, or cannot be resolved.
func Resolved(path string) string {
	if target, err := filepath.EvalSymlinks(path); err == nil {
		return target
	}
	for range 40 { // as the kernel's bound on links followed
		target, err := os.Readlink(path)
		if err != nil {
			return path
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(path), target)
		}
		path = target
	}
	return path
}

// writeFile writes data to a synced temp file beside path, in a dir that
// exists, and puts it in place with install (rename, or link to create
// only).
func writeFile(path string, data []byte, install func(tmp, path string) error) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, tempPattern(path))
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a rename; drops the temp name after a link
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
	if err := install(tmp, path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
