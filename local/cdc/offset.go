package cdc

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Offset is where the source resumes: just after the last transaction whose every change has been
// published (and, with the local emulator, delivered). Replaying from an older offset is harmless: the
// cache's version guard refuses what it already has.
type Offset struct {
	File string `json:"file"`
	Pos  uint64 `json:"pos"`
	GTID string `json:"gtid,omitempty"` // of the last transaction published, for information
	// SnapshotCompleted is false until the initial snapshot has been published in full; a source that
	// stops during the snapshot starts it again, as Debezium does.
	SnapshotCompleted bool `json:"snapshot_completed"`
}

// OffsetFile is the name of the offset file in the state directory.
const OffsetFile = "offsets.json"

// LoadOffset reads dir's offset; ok is false if there is none yet.
func LoadOffset(dir string) (o Offset, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, OffsetFile))
	if errors.Is(err, os.ErrNotExist) {
		return Offset{}, false, nil
	}
	if err != nil {
		return Offset{}, false, fmt.Errorf("cdc: read offset: %w", err)
	}
	if err := json.Unmarshal(b, &o); err != nil {
		return Offset{}, false, fmt.Errorf("cdc: offset file %s is damaged (delete it to snapshot again): %w", filepath.Join(dir, OffsetFile), err)
	}
	return o, true, nil
}

// SaveOffset writes o durably: to a temporary file, fsynced, renamed over the old one, and the directory
// fsynced, so a crash leaves either the old or the new offset, never a torn one.
func SaveOffset(dir string, o Offset) error {
	b, err := json.Marshal(o)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cdc: state dir: %w", err)
	}
	tmp, err := os.CreateTemp(dir, OffsetFile+".tmp*")
	if err != nil {
		return fmt.Errorf("cdc: save offset: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("cdc: save offset: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("cdc: save offset: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("cdc: save offset: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, OffsetFile)); err != nil {
		return fmt.Errorf("cdc: save offset: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
