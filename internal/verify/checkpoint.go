package verify

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/bits-and-blooms/bloom/v3"
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
	// FilterKeys is how many keys the Bloom filter holds; FilterPartial is set when the rows pass was
	// resumed, so the filter lacks the keys read before the interruption (they are then looked up:
	// slower, not less exact).
	FilterKeys    int64 `json:"filter_keys,omitempty"`
	FilterPartial bool  `json:"filter_partial,omitempty"`
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
	for _, p := range []string{path, filterPath(path)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("verify: remove the checkpoint of the completed check: %w", err)
		}
	}
	return nil
}

// filterPath is where the Bloom filter of the table in progress is kept once its rows pass is done.
func filterPath(checkpoint string) string { return checkpoint + ".filter" }

// saveFilter writes f beside the checkpoint (atomically), for a resumed extras pass.
func (r *runner) saveFilter(f *bloom.BloomFilter) error {
	if r.cp == nil || f == nil {
		return nil
	}
	path := filterPath(r.cfg.Checkpoint)
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("verify: checkpoint filter: %w", err)
	}
	_, werr := f.WriteTo(tmp)
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("verify: checkpoint filter: %w", err)
	}
	return os.Rename(tmp.Name(), path)
}

// loadFilter reads the filter saved beside the checkpoint; nil if there is none.
func (r *runner) loadFilter() *bloom.BloomFilter {
	if r.cp == nil {
		return nil
	}
	fh, err := os.Open(filterPath(r.cfg.Checkpoint))
	if err != nil {
		return nil
	}
	defer fh.Close()
	f := &bloom.BloomFilter{}
	if _, err := f.ReadFrom(fh); err != nil {
		return nil
	}
	return f
}

// pendingOf is filled in by the table check in progress (set by checkTable).
func (r *runner) pendingOf(st *tableState) []*suspect {
	if r.current == nil || r.current.st != st {
		return nil
	}
	return append([]*suspect(nil), r.current.pending...)
}
