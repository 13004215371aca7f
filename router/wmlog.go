package router

import (
	"context"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill"
)

// wmLogger adapts slog for Watermill. Watermill's info lines (a handler
// started, the router closed) go to debug, so millrace's own lines stay
// readable; its trace lines, one per message, are dropped before their
// fields are turned into attributes (Watermill's own adapter builds them
// first, which cost ~5% of a stage's CPU).
type wmLogger struct{ l *slog.Logger }

var _ watermill.LoggerAdapter = wmLogger{}

func (w wmLogger) log(level slog.Level, msg string, fields watermill.LogFields, extra ...any) {
	if !w.l.Enabled(context.Background(), level) {
		return
	}
	args := make([]any, 0, 2*len(fields)+len(extra))
	for k, v := range fields {
		args = append(args, k, v)
	}
	w.l.Log(context.Background(), level, msg, append(args, extra...)...)
}

func (w wmLogger) Error(msg string, err error, fields watermill.LogFields) {
	w.log(slog.LevelError, msg, fields, "err", err)
}

func (w wmLogger) Info(msg string, fields watermill.LogFields) { w.log(slog.LevelDebug, msg, fields) }
func (w wmLogger) Debug(msg string, fields watermill.LogFields) {
	w.log(slog.LevelDebug-2, msg, fields)
}
func (w wmLogger) Trace(string, watermill.LogFields) {}

func (w wmLogger) With(fields watermill.LogFields) watermill.LoggerAdapter {
	args := make([]any, 0, 2*len(fields))
	for k, v := range fields {
		args = append(args, k, v)
	}
	return wmLogger{w.l.With(args...)}
}
