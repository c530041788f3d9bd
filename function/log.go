package function

import (
	"io"
	"log/slog"
)

// NewLogger returns a JSON logger whose lines Cloud Logging parses as structured entries: "severity"
// instead of "level" (with Cloud Logging's names), "message" instead of "msg".
func NewLogger(w io.Writer, level slog.Level) *slog.Logger {
	return NewProjectLogger(w, level, "")
}

// NewProjectLogger is NewLogger with trace correlation: a line logged with the context of a request
// that carried a trace header (see Traced) gets "logging.googleapis.com/trace" =
// projects/<project>/traces/<id>, with the span id and sampling flag. No project: no trace fields.
//
// Cloud Run's logging agent reads each JSON line on stdout and turns these fields into the LogEntry's
// severity, message and trace, so writing through the Cloud Logging API (cloud.google.com/go/logging)
// would add nothing but network calls inside requests and entries buffered in memory when SIGTERM comes.
func NewProjectLogger(w io.Writer, level slog.Level, project string) *slog.Logger {
	return slog.New(traceHandler{project: project, Handler: slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) > 0 {
				return a
			}
			switch a.Key {
			case slog.LevelKey:
				a.Key = "severity"
				switch lv := a.Value.Any().(slog.Level); {
				case lv >= slog.LevelError:
					a.Value = slog.StringValue("ERROR")
				case lv >= slog.LevelWarn:
					a.Value = slog.StringValue("WARNING")
				case lv >= slog.LevelInfo:
					a.Value = slog.StringValue("INFO")
				default:
					a.Value = slog.StringValue("DEBUG")
				}
			case slog.MessageKey:
				a.Key = "message"
			}
			return a
		},
	})})
}
