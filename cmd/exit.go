package cmd

import (
	"errors"
	"fmt"

	"chatctl/pkg/sig"

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

// ExitError carries an exit code; an empty message prints nothing.
type ExitError struct {
	Code int
	Err  error
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

func usageErr(c *cobra.Command, err error) error {
	var ee *ExitError
	if errors.As(err, &ee) && ee.Code == ExitUsage {
		return err
	}
	return exitf(ExitUsage, "%v (see '%s --help')", err, c.CommandPath())
}

// exitCode maps an error from pkg/ to the exit-code table.
func exitCode(err error) int {
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	var se *sig.Error
	if errors.As(err, &se) {
		return ExitSigRejected
	}
	for _, m := range exitMappers {
		if code, ok := m(err); ok {
			return code
		}
	}
	return ExitFailure
}

// exitMappers let command files teach exitCode about their packages' errors.
var exitMappers []func(error) (int, bool)
