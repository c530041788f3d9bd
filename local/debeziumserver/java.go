package debeziumserver

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// MinJava is the oldest Java feature release Debezium Server 3.x runs on.
const MinJava = 21

// Java is a Java installation.
type Java struct {
	Home    string // JAVA_HOME: bin/java is the launcher
	Feature int    // the feature release: 17, 21, 25
}

// FindJava picks the Java Debezium Server runs on: JAVA_HOME (read through getenv) if it is at least
// MinJava, otherwise the newest installation under /usr/lib/jvm that is. The error names every Java it
// looked at and how to install a suitable one.
func FindJava(getenv func(string) string) (Java, error) {
	return findJava(getenv, "/usr/lib/jvm")
}

func findJava(getenv func(string) string, jvms string) (Java, error) {
	var seen []string
	if home := getenv("JAVA_HOME"); home != "" {
		j, err := inspectJava(home)
		switch {
		case err != nil:
			seen = append(seen, fmt.Sprintf("JAVA_HOME=%s (%v)", home, err))
		case j.Feature >= MinJava:
			return j, nil
		default:
			seen = append(seen, fmt.Sprintf("JAVA_HOME=%s (Java %d)", home, j.Feature))
		}
	}
	homes, _ := filepath.Glob(filepath.Join(jvms, "*"))
	var found []Java
	for _, home := range homes {
		if fi, err := os.Lstat(home); err != nil || fi.Mode()&os.ModeSymlink != 0 {
			continue // Debian's alias links (java-1.17.0-openjdk-amd64 -> java-17-openjdk-amd64)
		}
		j, err := inspectJava(home)
		if err != nil {
			continue
		}
		found = append(found, j)
		seen = append(seen, fmt.Sprintf("%s (Java %d)", home, j.Feature))
	}
	sort.SliceStable(found, func(a, b int) bool { return found[a].Feature > found[b].Feature })
	if len(found) > 0 && found[0].Feature >= MinJava {
		return found[0], nil
	}
	if len(seen) == 0 {
		seen = append(seen, "no Java at all (JAVA_HOME unset, nothing in "+jvms+")")
	}
	return Java{}, fmt.Errorf("debeziumserver: Debezium Server %s needs Java %d or newer; found %s. "+
		"Install a JDK or JRE %d+ (Debian 12 packages only Java 17: use Eclipse Temurin 21 or 25 from Adoptium's apt repository, "+
		"or openjdk-21-jre-headless on Debian 13) and set JAVA_HOME to it if it is not under %s",
		Version, MinJava, strings.Join(seen, ", "), MinJava, jvms)
}

// inspectJava reads the feature release of the Java at home from its release file (every JDK and JRE
// build since Java 9 has one), or failing that from the launcher itself.
func inspectJava(home string) (Java, error) {
	launcher := filepath.Join(home, "bin", "java")
	if _, err := os.Stat(launcher); err != nil {
		return Java{}, errors.New("no bin/java")
	}
	if f, err := os.Open(filepath.Join(home, "release")); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "JAVA_VERSION="); ok {
				if n, err := feature(strings.Trim(v, `"`)); err == nil {
					return Java{Home: home, Feature: n}, nil
				}
			}
		}
	}
	out, err := exec.Command(launcher, "-XshowSettings:properties", "-version").CombinedOutput()
	if err != nil {
		return Java{}, fmt.Errorf("%s -version: %w", launcher, err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "java.specification.version = "); ok {
			if n, err := feature(v); err == nil {
				return Java{Home: home, Feature: n}, nil
			}
		}
	}
	return Java{}, errors.New("version not found")
}

// feature parses "25.0.3", "21", "17.0.15" or the old "1.8.0_402" into the feature release.
func feature(v string) (int, error) {
	parts := strings.Split(v, ".")
	if parts[0] == "1" && len(parts) > 1 {
		parts = parts[1:]
	}
	return strconv.Atoi(parts[0])
}
