// Package debeziumserver gets the pinned Debezium Server release from Maven Central (through Maven, so it
// is cached in Maven's local repository and reused offline), unpacks it once into a cache directory, and
// runs it as a child process from the same configuration template and entry point the image uses
// (debezium-server/), with a short, documented list of local overrides (see Overrides).
package debeziumserver

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// Version is the Debezium Server release this package runs: io.debezium:debezium-server-dist:<Version>.
const Version = "3.6.1.Final"

// The archive's SHA-256, pinned here because the Maven repository reachable from this project's machines
// serves neither a .sha1/.md5 nor a POM for this artifact (Maven says "Checksum validation failed, no
// checksums available" with --strict-checksums), so Maven cannot verify it. Two independent downloads
// through Maven gave this digest; its SHA-1 is ee31ea4e1a038ac03b9d64646ce2a1bd14adb4f5, to compare with
// Maven Central's published debezium-server-dist-3.6.1.Final.tar.gz.sha1 wherever that can be read.
const (
	distSHA256 = "f95567c7107e5ae0a778dce850c36e86487b2c49e131dfc9bbb72c7ac2feb944"
	distSize   = 781529954
)

// mavenDependencyPlugin is pinned so that Maven never looks up plugin metadata, and so works offline
// once its own jars are in the local repository.
const mavenDependencyPlugin = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"

// Dist is an unpacked Debezium Server distribution.
type Dist struct {
	// Home holds run.sh, the runner jar, lib/, config/, jmx/ and lib_metrics/*.sh: what run.sh needs.
	// It is shared by every run and never written to: each run gets its own directory (see Start).
	Home string
	// LibOpt holds the scripting jars of the distribution's lib_opt/ once FetchScripting has run; the
	// compact event format needs them (EVENT_FORMAT=compact). Empty: none.
	LibOpt string
}

// FetchOptions configure Fetch.
type FetchOptions struct {
	// CacheDir holds the unpacked distribution (<CacheDir>/debezium-server-<Version>) and the small POM
	// Maven resolves it with; empty: <user cache dir>/cloudsql-cache (~/.cache/cloudsql-cache).
	CacheDir string
	// Maven is the mvn executable; empty: mvn on PATH.
	Maven string
	// Log receives Maven's output (nil: discarded; it is part of the error when Maven fails).
	Log io.Writer
}

// Fetch returns the unpacked distribution, resolving and unpacking it first if the cache does not have
// it yet: Maven resolves the archive into its local repository (offline first, so a second machine-wide
// fetch needs no network), Fetch checks its SHA-256, then unpacks the parts Debezium Server needs to run
// the MySQL and MariaDB connectors (not connectors/ or lib_opt/, about 400 MB of Cassandra connectors and
// scripting languages). Concurrent Fetches (parallel test binaries) wait for each other on a file lock.
func Fetch(ctx context.Context, opts FetchOptions) (*Dist, error) {
	if opts.CacheDir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return nil, fmt.Errorf("debeziumserver: no cache directory (set HOME or XDG_CACHE_HOME): %w", err)
		}
		opts.CacheDir = filepath.Join(base, "cloudsql-cache")
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	home := filepath.Join(opts.CacheDir, "debezium-server-"+Version)
	if complete(home) {
		return &Dist{Home: home}, nil
	}
	if err := os.MkdirAll(opts.CacheDir, 0o755); err != nil {
		return nil, fmt.Errorf("debeziumserver: %w", err)
	}
	unlock, err := lockFile(ctx, home+".lock")
	if err != nil {
		return nil, err
	}
	defer unlock()
	if complete(home) { // another process finished it while we waited
		return &Dist{Home: home}, nil
	}
	// Holding the lock, nobody else is unpacking: whatever a killed process left half-done goes.
	if stale, _ := filepath.Glob(home + ".unpacking-*"); len(stale) > 0 {
		for _, d := range stale {
			_ = os.RemoveAll(d)
		}
	}
	archive, err := resolve(ctx, opts)
	if err != nil {
		return nil, err
	}
	if err := unpack(ctx, archive, home); err != nil {
		return nil, err
	}
	return &Dist{Home: home}, nil
}

// completeMarker is written last into an unpacked distribution; it holds the archive's digest.
const completeMarker = ".cloudsql-cache-complete"

func complete(home string) bool {
	b, err := os.ReadFile(filepath.Join(home, completeMarker))
	return err == nil && strings.TrimSpace(string(b)) == distSHA256
}

// lockFile takes an exclusive flock on path, giving up when ctx ends.
func lockFile(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("debeziumserver: %w", err)
	}
	locked := make(chan error, 1)
	go func() { locked <- syscall.Flock(int(f.Fd()), syscall.LOCK_EX) }()
	select {
	case err := <-locked:
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("debeziumserver: lock %s: %w", path, err)
		}
		return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
	case <-ctx.Done():
		// Closing the file does not interrupt a blocked flock; the goroutine ends when the holder unlocks.
		go func() {
			if <-locked == nil {
				_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
			}
			f.Close()
		}()
		return nil, fmt.Errorf("debeziumserver: waiting for %s: %w", path, ctx.Err())
	}
}

// pom is the smallest project that depends on the archive; dependency:build-classpath resolves it and
// writes the archive's path in Maven's local repository, wherever settings.xml puts that.
const pom = `<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by cloudsql-cache (local/debeziumserver) to resolve Debezium Server through Maven. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>io.github.cloudsql-cache</groupId>
  <artifactId>debezium-server-fetch</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>io.debezium</groupId>
      <artifactId>debezium-server-dist</artifactId>
      <version>` + Version + `</version>
      <type>tar.gz</type>
    </dependency>
  </dependencies>
</project>
`

// resolve has Maven resolve the archive and returns its path in the local repository.
func resolve(ctx context.Context, opts FetchOptions) (string, error) {
	mvn := opts.Maven
	if mvn == "" {
		p, err := exec.LookPath("mvn")
		if err != nil {
			return "", errors.New("debeziumserver: mvn not found on PATH: install Maven (apt-get install maven; `make deps` does)")
		}
		mvn = p
	}
	dir := filepath.Join(opts.CacheDir, "maven")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("debeziumserver: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pom.xml"), []byte(pom), 0o644); err != nil {
		return "", fmt.Errorf("debeziumserver: %w", err)
	}
	out := filepath.Join(dir, "classpath.txt")
	var failures []string
	// Offline first: once the archive and the plugin are in the local repository, no network is needed.
	for _, offline := range []bool{true, false} {
		_ = os.Remove(out)
		args := []string{"-B", "-q", "-f", filepath.Join(dir, "pom.xml")}
		if offline {
			args = append(args, "-o")
		}
		args = append(args, mavenDependencyPlugin+":build-classpath", "-Dmdep.outputFile="+out, "-Dmdep.includeTypes=tar.gz")
		var buf bytes.Buffer
		cmd := exec.CommandContext(ctx, mvn, args...)
		cmd.Dir = dir
		cmd.Stdout = io.MultiWriter(&buf, opts.Log)
		cmd.Stderr = cmd.Stdout
		err := cmd.Run()
		if err == nil {
			b, rerr := os.ReadFile(out)
			if rerr != nil {
				return "", fmt.Errorf("debeziumserver: Maven wrote no classpath: %w", rerr)
			}
			path := strings.TrimSpace(string(b))
			if !strings.HasSuffix(path, ".tar.gz") || strings.Contains(path, ":") {
				return "", fmt.Errorf("debeziumserver: Maven resolved %q, not one tar.gz", path)
			}
			return path, nil
		}
		if ctx.Err() != nil {
			return "", fmt.Errorf("debeziumserver: Maven: %w", ctx.Err())
		}
		mode := "online"
		if offline {
			mode = "offline"
		}
		failures = append(failures, fmt.Sprintf("%s (%v):\n%s", mode, err, lastLines(buf.String(), 15)))
	}
	return "", fmt.Errorf("debeziumserver: Maven could not resolve io.debezium:debezium-server-dist:%s:tar.gz from its local repository or Maven Central:\n%s",
		Version, strings.Join(failures, "\n"))
}

// unpack extracts what run.sh needs from archive into home, checking the archive's digest on the way;
// nothing lands at home unless the whole archive was read and matched.
func unpack(ctx context.Context, archive, home string) (err error) {
	f, err := os.Open(archive)
	if err != nil {
		return fmt.Errorf("debeziumserver: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() != distSize {
		return fmt.Errorf("debeziumserver: %s is %d bytes, not the %d of the pinned release: delete it and fetch again", archive, fi.Size(), distSize)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(home), filepath.Base(home)+".unpacking-")
	if err != nil {
		return fmt.Errorf("debeziumserver: %w", err)
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(tmp)
		}
	}()
	h := sha256.New()
	zr, err := gzip.NewReader(io.TeeReader(f, h))
	if err != nil {
		return fmt.Errorf("debeziumserver: %s: %w", archive, err)
	}
	tr := tar.NewReader(zr)
	for {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("debeziumserver: %s: %w", archive, err)
		}
		rel, ok := wanted(hdr.Name)
		if !ok {
			continue
		}
		dst := filepath.Join(tmp, rel)
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			if err := writeFile(dst, tr, os.FileMode(hdr.Mode)&0o755|0o644); err != nil {
				return err
			}
		}
	}
	// Read to the end of the compressed stream, so the digest covers the whole file.
	if _, err := io.Copy(io.Discard, f); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != distSHA256 {
		return fmt.Errorf("debeziumserver: %s has SHA-256 %s, not the pinned %s: delete it from Maven's local repository and fetch again", archive, got, distSHA256)
	}
	if _, err := os.Stat(filepath.Join(tmp, "run.sh")); err != nil {
		return fmt.Errorf("debeziumserver: %s has no debezium-server/run.sh", archive)
	}
	if err := os.WriteFile(filepath.Join(tmp, completeMarker), []byte(distSHA256+"\n"), 0o644); err != nil {
		return err
	}
	if err := os.RemoveAll(home); err != nil { // an older, incomplete unpacking
		return err
	}
	return os.Rename(tmp, home)
}

// wanted maps an archive member to its path under home, or reports that run.sh does not need it.
func wanted(name string) (string, bool) {
	rel, ok := strings.CutPrefix(name, "debezium-server/")
	if !ok || rel == "" || strings.Contains(rel, "..") {
		return "", false
	}
	top, rest, _ := strings.Cut(rel, "/")
	switch top {
	case "lib", "config", "jmx":
		return rel, true
	case "lib_metrics":
		// run.sh sources the two scripts; the agents' jars (27 MB) load only when enabled.
		return rel, rest == "" || strings.HasSuffix(rest, ".sh")
	case "run.sh":
		return rel, true
	}
	return rel, strings.HasPrefix(top, "debezium-server-") && strings.HasSuffix(top, "-runner.jar")
}

func writeFile(path string, r io.Reader, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
