// Package lifetime bounds how long the e2e helper commands (data plane,
// model server) live, so a forgotten process never outlives its test.
package lifetime

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Context ends on SIGINT/SIGTERM, after exitAfter (when positive), or when
// the parent process goes away.
func Context(ctx context.Context, exitAfter time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	if exitAfter > 0 {
		var c2 context.CancelFunc
		ctx, c2 = context.WithTimeout(ctx, exitAfter)
		prev := cancel
		cancel = func() { c2(); prev() }
	}
	parent := os.Getppid()
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if os.Getppid() != parent {
					cancel()
					return
				}
			}
		}
	}()
	return ctx, cancel
}
