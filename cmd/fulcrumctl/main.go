// Command fulcrumctl drives Fulcrum rollouts through the admin API: list and
// watch them, start a candidate (optionally waiting for the outcome, for CI),
// split traffic by hand, promote, roll back, pause and resume, and run A/B
// experiments (experiment start, get, stop).
//
// Exit codes: 0 success (with --wait: promoted, or an arm beat the
// control), 1 the server refused the request or the rollout was rolled back
// or failed, 2 --wait timed out, 3 usage or connection error; experiment
// start --wait: 4 no difference, 5 inconclusive, 6 stopped, 7 the control
// won.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/fulcrum-ml/fulcrum/admin/client"
)

// Exit codes.
const (
	exitOK       = 0
	exitFailed   = 1
	exitTimeout  = 2
	exitUsageErr = 3
	// The outcomes of experiment start --wait other than a winner, each
	// its own code so that a pipeline can tell them apart.
	exitNoDifference = 4
	exitInconclusive = 5
	exitStopped      = 6
	exitControlWon   = 7
)

// exitError carries an exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// run executes one command line and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	cmd := newRootCmd(&streams{out: stdout, err: stderr, getenv: getenv})
	cmd.SetArgs(args)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	err := cmd.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(stderr, "error:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "error:", err)
	var ce *client.ConnectionError
	var p *client.Problem
	switch {
	case errors.As(err, &ce):
		return exitUsageErr
	case errors.As(err, &p):
		return exitFailed
	}
	// Anything else comes from cobra: unknown flag, missing argument.
	return exitUsageErr
}
