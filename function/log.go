package function

import (
	"io"
	"log/slog"
)

// NewLogger returns a JSON logger whose lines Cloud Logging parses as structured entries: "severity"
// instead of "level" (with Cloud Logging's names), "message" instead of "msg".
func NewLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{
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
	}))
}
