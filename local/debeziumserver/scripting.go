package debeziumserver

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// scriptingJars are the lib_opt/ jars the compact event format's truncate route needs (a Groovy
// ContentBasedRouter; debezium-server/compact.properties): Debezium's scripting SMTs, Groovy and its
// JSR 223 engine. The rest of lib_opt/ (GraalJS, WebAssembly, Chronicle Queue, ~120 MB) is not needed.
var scriptingJars = []string{"debezium-scripting-", "groovy-4", "groovy-jsr223-"}

// FetchScripting unpacks the scripting jars of the pinned distribution into
// <CacheDir>/debezium-server-<Version>-lib_opt, beside the distribution Fetch unpacked (which stays as
// it is, shared with runs that do not need them), and records the directory in d.LibOpt: Start then
// links it as the run's lib_opt/, which run.sh puts on the class path with ENABLE_DEBEZIUM_SCRIPTING=true
// (the entry point sets it for EVENT_FORMAT=compact), as in the upstream image.
func FetchScripting(ctx context.Context, opts FetchOptions, d *Dist) error {
	if opts.CacheDir == "" {
		opts.CacheDir = filepath.Dir(d.Home)
	}
	if opts.Log == nil {
		opts.Log = io.Discard
	}
	dir := filepath.Join(opts.CacheDir, "debezium-server-"+Version+"-lib_opt")
	if complete(dir) {
		d.LibOpt = dir
		return nil
	}
	unlock, err := lockFile(ctx, dir+".lock")
	if err != nil {
		return err
	}
	defer unlock()
	if complete(dir) {
		d.LibOpt = dir
		return nil
	}
	archive, err := resolve(ctx, opts)
	if err != nil {
		return err
	}
	if err := unpackScripting(ctx, archive, dir); err != nil {
		return err
	}
	d.LibOpt = dir
	return nil
}

func unpackScripting(ctx context.Context, archive, dir string) (err error) {
	f, err := os.Open(archive)
	if err != nil {
		return fmt.Errorf("debeziumserver: %w", err)
	}
	defer f.Close()
	tmp, err := os.MkdirTemp(filepath.Dir(dir), filepath.Base(dir)+".unpacking-")
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
	found := map[string]bool{}
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
		name, ok := strings.CutPrefix(hdr.Name, "debezium-server/lib_opt/")
		if !ok || hdr.Typeflag != tar.TypeReg || strings.Contains(name, "/") || !strings.HasSuffix(name, ".jar") {
			continue
		}
		for _, p := range scriptingJars {
			if strings.HasPrefix(name, p) {
				if err := writeFile(filepath.Join(tmp, name), tr, 0o644); err != nil {
					return err
				}
				found[p] = true
			}
		}
	}
	if _, err := io.Copy(io.Discard, f); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != distSHA256 {
		return fmt.Errorf("debeziumserver: %s has SHA-256 %s, not the pinned %s: delete it from Maven's local repository and fetch again", archive, got, distSHA256)
	}
	for _, p := range scriptingJars {
		if !found[p] {
			return fmt.Errorf("debeziumserver: %s has no lib_opt/%s*.jar", archive, p)
		}
	}
	if err := os.WriteFile(filepath.Join(tmp, completeMarker), []byte(distSHA256+"\n"), 0o644); err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return os.Rename(tmp, dir)
}
