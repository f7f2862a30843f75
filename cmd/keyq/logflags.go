package main

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// logFormat is the --log-format flag: text or json.
type logFormat string

// Set implements pflag.Value.
func (f *logFormat) Set(s string) error {
	switch s {
	case "text", "json":
		*f = logFormat(s)
		return nil
	}
	return fmt.Errorf("%q is not a log format: use text or json", s)
}

// String implements pflag.Value.
func (f *logFormat) String() string { return string(*f) }

// Type implements pflag.Value.
func (f *logFormat) Type() string { return "text|json" }

// logLevel is the --log-level flag: debug, info, warn or error.
type logLevel struct{ level slog.Level }

// Set implements pflag.Value.
func (l *logLevel) Set(s string) error {
	if err := l.level.UnmarshalText([]byte(s)); err != nil {
		return fmt.Errorf("%q is not a log level: use debug, info, warn or error", s)
	}
	return nil
}

// String implements pflag.Value.
func (l *logLevel) String() string { return strings.ToLower(l.level.String()) }

// Type implements pflag.Value.
func (l *logLevel) Type() string { return "level" }

// newLogger returns the logger that serve writes to w.
func newLogger(w io.Writer, format logFormat, level logLevel) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level.level, ReplaceAttr: durationAsString}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// durationAsString writes a duration as Go prints it ("15m0s"), so that JSON logs
// do not show nanoseconds.
func durationAsString(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}
