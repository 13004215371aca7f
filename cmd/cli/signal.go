package cli

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// stopping is what a command logs when a signal stops it: first on the
// first SIGINT or SIGTERM ("" logs nothing), again when a second one makes
// it exit at once (status 130).
type stopping struct{ first, again string }

// signalContext is cancelled by the first SIGINT or SIGTERM; a second one
// exits at once.
func signalContext(parent context.Context, log *slog.Logger, say stopping) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	ch := make(chan os.Signal, 2)
	done := make(chan struct{})
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		select {
		case sig := <-ch:
			if say.first != "" {
				log.Info(say.first+" (signal again to exit at once)", "signal", sig.String())
			}
			cancel()
		case <-done:
			return
		}
		select {
		case sig := <-ch:
			log.Error(say.again, "signal", sig.String())
			os.Exit(130)
		case <-done:
		}
	}()
	var once sync.Once
	return ctx, func() { once.Do(func() { signal.Stop(ch); close(done); cancel() }) }
}
