package std

import (
	"context"
	"fmt"
	"log/slog"
	"unicode/utf8"

	"github.com/millrace/millrace/filters"
)

// Config keys of the log filter.
const (
	logLevel    = "level"
	logMaxBytes = "max_bytes"
	logHeaders  = "headers"
)

// logLevels are the values of the level field.
var logLevels = map[string]slog.Level{
	"debug": slog.LevelDebug,
	"info":  slog.LevelInfo,
	"warn":  slog.LevelWarn,
	"error": slog.LevelError,
}

func logSpec() filters.Spec {
	return filters.Spec{
		Name:    "log",
		Summary: "Logs each record and passes it on unchanged.",
		Description: "Each record is logged with the stage's logger as a \"record\" entry with its\n" +
			"key (left out when the record has none), its payload cut to `max_bytes`, the\n" +
			"payload's full size and, with `headers: true`, its headers. Nothing is\n" +
			"formatted when the logger does not log `level`, so a debug-level log stage\n" +
			"costs little in production. Use it to watch a pipeline while developing it,\n" +
			"or to trace the records of one stage.",
		Fields: []filters.Field{
			{
				Name:        logLevel,
				Type:        filters.String,
				Default:     "info",
				Description: "The level of the entries: debug, info, warn or error.",
				Example:     "debug",
			},
			{
				Name:        logMaxBytes,
				Type:        filters.Int,
				Default:     256,
				Description: "How many bytes of the payload to log; 0 logs none.",
				Example:     "1024",
			},
			{
				Name:        logHeaders,
				Type:        filters.Bool,
				Default:     false,
				Description: "Whether to log the headers too.",
				Example:     "true",
			},
		},
		Example: `level: debug
max_bytes: 1024
headers: true
`,
		New: newLog,
	}
}

func init() { filters.MustRegister(logSpec()) }

// newLog checks a log config.
func newLog(cfg filters.Config) (filters.Filter, error) {
	name := cfg.String(logLevel)
	level, ok := logLevels[name]
	if !ok {
		return nil, filters.FieldError(logLevel, fmt.Errorf("level %q is not one of debug, info, warn and error", name))
	}
	maxBytes := cfg.Int(logMaxBytes)
	if maxBytes < 0 {
		return nil, filters.FieldError(logMaxBytes, fmt.Errorf("max_bytes must not be negative, got %d", maxBytes))
	}
	return &logFilter{logger: logger(cfg), level: level, maxBytes: maxBytes, headers: cfg.Bool(logHeaders)}, nil
}

// logFilter is a [filters.Filter]; it holds no resources, so it is no [filters.Closer].
var _ filters.Filter = (*logFilter)(nil)

// logFilter logs records; slog loggers are safe for concurrent use.
type logFilter struct {
	logger   *slog.Logger
	level    slog.Level
	maxBytes int
	headers  bool
}

// Process implements [filters.Filter].
func (f *logFilter) Process(ctx context.Context, msg *filters.Message) ([]*filters.Message, error) {
	if !f.logger.Enabled(ctx, f.level) {
		return []*filters.Message{msg}, nil
	}
	attrs := make([]slog.Attr, 0, 4)
	if msg.Key != nil {
		attrs = append(attrs, slog.String("key", string(msg.Key)))
	}
	if f.maxBytes > 0 {
		attrs = append(attrs, slog.String("payload", string(truncate(msg.Payload, f.maxBytes))))
	}
	attrs = append(attrs, slog.Int("size", len(msg.Payload)))
	if f.headers {
		headers := make([]any, 0, len(msg.Headers))
		for _, h := range msg.Headers {
			headers = append(headers, slog.String(h.Key, string(h.Value)))
		}
		attrs = append(attrs, slog.Group("headers", headers...))
	}
	f.logger.LogAttrs(ctx, f.level, "record", attrs...)
	return []*filters.Message{msg}, nil
}

// logger returns the logger of cfg, which is only nil in a Config made
// without Parse or NewConfig.
func logger(cfg filters.Config) *slog.Logger {
	if cfg.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return cfg.Logger
}

// truncate returns at most max bytes of b, cut at a rune boundary when b is
// UTF-8.
func truncate(b []byte, max int) []byte {
	if len(b) <= max {
		return b
	}
	cut := max
	// Back up over at most three continuation bytes to a rune start.
	for cut > 0 && cut > max-utf8.UTFMax && !utf8.RuneStart(b[cut]) {
		cut--
	}
	if !utf8.RuneStart(b[cut]) {
		cut = max // not UTF-8 there
	}
	return b[:cut]
}
