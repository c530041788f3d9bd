package verify

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

const (
	phaseRows   = "rows"
	phaseExtras = "extras"
	phaseSample = "sample"
)

// checkpointVersion changes when the file's meaning does: an older file is refused, not misread.
const checkpointVersion = 1

// checkpoint is what an interrupted check needs to resume: the tables done, where the current one
// stands, and the differences kept so far.
type checkpoint struct {
	Version int `json:"version"`
	// Check identifies the check: a checkpoint resumes only the same tables, range and extras mode.
	Check   string        `json:"check"`
	Done    []TableReport `json:"done"`
	Current *tableState   `json:"current,omitempty"`
	Diffs   []Diff        `json:"diffs,omitempty"`
}

// tableState is where the check of one table stands.
type tableState struct {
	Report TableReport `json:"report"`
	Phase  string      `json:"phase"`
	// After is the last primary key the rows pass read (nil before the first chunk).
	After textValues `json:"after,omitempty"`
	// Cursor is the extras pass's SCAN cursor: every key returned before it is checked or pending.
	Cursor  uint64     `json:"cursor,omitempty"`
	Pending []*suspect `json:"pending,omitempty"`
}

func (s *tableState) Table() string { return s.Report.Table }

// textValues are values as the server printed them: bytes, not necessarily UTF-8 (a VARBINARY key),
// so they are kept in the file as base64.
type textValues []string

func (t textValues) MarshalJSON() ([]byte, error) {
	b := make([][]byte, len(t))
	for i, s := range t {
		b[i] = []byte(s)
	}
	return json.Marshal(b)
}

func (t *textValues) UnmarshalJSON(data []byte) error {
	var b [][]byte
	if err := json.Unmarshal(data, &b); err != nil {
		return err
	}
	*t = make(textValues, len(b))
	for i, v := range b {
		(*t)[i] = string(v)
	}
	return nil
}

func (cp *checkpoint) done(table string) bool {
	for _, t := range cp.Done {
		if t.Table == table {
			return true
		}
	}
	return false
}

// checkpointKey identifies what a check covers.
func (c *Config) checkpointKey() string {
	k, _ := json.Marshal(struct {
		Tables   []string
		From, To []string
		Extras   bool
	}{c.Tables, c.From, c.To, c.extras()})
	return string(k)
}

// loadCheckpoint reads path, or starts a new checkpoint if it does not exist.
func loadCheckpoint(path, key string) (*checkpoint, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &checkpoint{Version: checkpointVersion, Check: key}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("verify: checkpoint: %w", err)
	}
	var cp checkpoint
	if err := json.Unmarshal(data, &cp); err != nil {
		return nil, fmt.Errorf("verify: checkpoint %s is not a checkpoint of this version (%v): remove it to start over", path, err)
	}
	if cp.Version != checkpointVersion {
		return nil, fmt.Errorf("verify: checkpoint %s has version %d, not %d: remove it to start over", path, cp.Version, checkpointVersion)
	}
	if cp.Check != key {
		return nil, fmt.Errorf("verify: checkpoint %s is of another check (%s), not this one (%s): run that check again to resume it, or remove the file to start this one", path, cp.Check, key)
	}
	return &cp, nil
}

// save writes the checkpoint, at most once a second unless now: atomically (a new file renamed over
// the old), so an interruption at any moment leaves a whole checkpoint.
func (r *runner) save(now bool) error {
	if r.cp == nil || (!now && time.Since(r.saved) < time.Second) {
		return nil
	}
	r.saved = time.Now()
	if st := r.cp.Current; st != nil {
		st.Pending = r.pendingOf(st)
	}
	data, err := json.MarshalIndent(r.cp, "", " ")
	if err != nil {
		return fmt.Errorf("verify: checkpoint: %w", err)
	}
	path := r.cfg.Checkpoint
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("verify: checkpoint: %w", err)
	}
	_, werr := tmp.Write(data)
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("verify: checkpoint: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("verify: checkpoint: %w", err)
	}
	return nil
}

func removeCheckpoint(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("verify: remove the checkpoint of the completed check: %w", err)
	}
	return nil
}

// pendingOf is filled in by the table check in progress (set by checkTable).
func (r *runner) pendingOf(st *tableState) []*suspect {
	if r.current == nil || r.current.st != st {
		return nil
	}
	return append([]*suspect(nil), r.current.pending...)
}
