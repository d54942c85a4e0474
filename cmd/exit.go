package cmd

import (
	"fmt"

	"github.com/spf13/cobra"
)

// Exit codes, one table for every command (README "Exit codes").
const (
	ExitOK          = 0
	ExitFailure     = 1
	ExitUsage       = 2
	ExitNotLoggedIn = 3
	ExitKicked      = 4
	ExitSigRejected = 5
	ExitUnreachable = 6
)

// ExitError carries an exit code; an empty message prints nothing. classify
// reads its code and kind, and what the errors it wraps say (a kick type, a
// Tencent code).
type ExitError struct {
	Code int
	Kind string // one of the Kind constants; "" for the code's own
	Err  error
	// Data is what the command's JSON document holds besides "error" (an
	// object: its fields go beside "error"), for -o json.
	Data any
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return ""
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// exitWith wraps err with code; err may be nil for a silent exit.
func exitWith(code int, err error) error { return &ExitError{Code: code, Err: err} }

func exitf(code int, format string, a ...any) error {
	return &ExitError{Code: code, Err: fmt.Errorf(format, a...)}
}

// withData attaches the JSON document's other fields to err, which keeps
// its code and kind.
func withData(err error, data any) error {
	o := classify(err)
	return &ExitError{Code: o.Code, Kind: o.Kind, Err: err, Data: data}
}

// causeErr is an error whose message is msg and which wraps cause without
// repeating its text: the message says what a user needs, classify still
// sees the cause.
type causeErr struct {
	msg   string
	cause error
}

func (e *causeErr) Error() string { return e.msg }
func (e *causeErr) Unwrap() error { return e.cause }

// because is err's outcome with the message of format.
func because(cause error, format string, a ...any) error {
	return &causeErr{msg: fmt.Sprintf(format, a...), cause: cause}
}

func usageErr(c *cobra.Command, err error) error {
	if classify(err).Code == ExitUsage {
		return err
	}
	return exitf(ExitUsage, "%v (see '%s --help')", err, c.CommandPath())
}
