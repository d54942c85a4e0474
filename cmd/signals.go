package cmd

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// SIGINT, SIGTERM and SIGHUP (Ctrl-C; timeout(1) or a CI runner's cancel;
// a closed terminal or a dropped ssh session) stop every command the same
// way (docs/OUTPUT.md, "Signals"): the first one cancels the context of
// the run (withSignals), so the command stops where it is and reports like
// any failure; execute then gives that failure the signal's exit code
// (interrupted). A second signal (past oneSignal) kills
// the process at once, as it would without chatctl's handler.

// interruptedError is the cause of a run's context that a signal ended.
type interruptedError struct{ sig os.Signal }

func (e *interruptedError) Error() string { return "interrupted by " + signalName(e.sig) }

// code is the shell's code for a process that the signal ended: 128 + its
// number (130 SIGINT, 143 SIGTERM, 129 SIGHUP).
func (e *interruptedError) code() int {
	if s, ok := e.sig.(syscall.Signal); ok {
		return 128 + int(s)
	}
	return 128 + int(syscall.SIGINT)
}

func signalName(s os.Signal) string {
	switch s {
	case os.Interrupt:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGHUP:
		return "SIGHUP"
	}
	return s.String()
}

// stopSignals are the signals that stop a run. SIGHUP is among them so a
// login that a dropped terminal interrupts after the server answered is
// still saved (afterAnswer), where the default action would kill the
// process between the answer and the file.
var stopSignals = []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP}

// oneSignal is how long after a stop signal the signals that come are the
// same one: timeout(1) signals its child and then its own process group,
// so chatctl gets SIGTERM twice within microseconds, and a kill -TERM of a
// pipeline's group reaches it beside its own. Killed by that echo, chatctl
// died without its error document or stderr line. A person who presses
// Ctrl-C twice is slower than this.
const oneSignal = 250 * time.Millisecond

// withSignals returns a context that the first of stopSignals cancels,
// its cause an *interruptedError; oneSignal later the default actions
// are back, so a second signal kills the process. A signal the process
// was started with ignored stays ignored (a script's `chatctl … &`: a
// non-interactive shell starts it with SIGINT ignored; nohup, SIGHUP).
// stop releases the handler.
func withSignals(parent context.Context) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, 1)
	for _, s := range stopSignals {
		if !signal.Ignored(s) {
			signal.Notify(ch, s)
		}
	}
	done := make(chan struct{})
	go func() {
		select {
		case s := <-ch:
			cancel(&interruptedError{sig: s})
		case <-done:
			return
		}
		t := time.NewTimer(oneSignal)
		defer t.Stop()
		for {
			select {
			case <-ch: // the first one's echo
			case <-t.C:
				signal.Stop(ch)
				return
			case <-done:
				return
			}
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		close(done)
		cancel(nil)
	}
}

// interrupted is err, the failure of a run whose context ctx a signal
// ended, as that interruption: exit 129, 130 or 143, kind "interrupted", the
// same JSON document fields. A failure that says what a server or the
// profile answered (kicked, UserSig rejected, not logged in, a usage
// error...) keeps its code: the signal came too late to change it. Only
// what stopping makes of a run (a cancelled wait, an unfinished read or
// write) becomes the interruption.
func interrupted(ctx context.Context, err error) error {
	var ie *interruptedError
	if err == nil || !errors.As(context.Cause(ctx), &ie) {
		return err
	}
	switch classify(err).Kind {
	case KindError, KindUnreachable:
	default:
		return err
	}
	var data any
	var ee *ExitError
	if errors.As(err, &ee) {
		data = ee.Data
	}
	return &ExitError{Code: ie.code(), Kind: KindInterrupted, Err: because(err, "%s before it finished", ie), Data: data}
}
