package function

import (
	"runtime/debug"
	"strings"
)

// Version names the running function in the table policy it publishes for readers: the Cloud Run
// revision (K_REVISION, which Cloud Run sets; it is not configuration) and the module version and VCS
// revision the binary was built from, as far as they are known; "unknown" when nothing is.
func Version(getenv func(string) string) string {
	var parts []string
	if r := getenv("K_REVISION"); r != "" {
		parts = append(parts, r)
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			parts = append(parts, v)
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && s.Value != "" {
				parts = append(parts, "vcs "+s.Value)
			}
		}
	}
	if len(parts) == 0 {
		return "unknown"
	}
	return strings.Join(parts, " ")
}
