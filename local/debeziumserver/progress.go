package debeziumserver

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// Progress is what the connector is doing, as its log tells (Debezium reports snapshot progress only
// there and in JMX): the phase, and during a snapshot the table being read and its rows.
type Progress struct {
	Phase string // "starting", "snapshot", "streaming" or "stopped"
	// Step is the snapshot's current step ("Snapshot step 7 - Snapshotting data").
	Step string
	// Table is the table being exported, the TableNo-th of Tables; Rows of about RowsEstimate (0:
	// unknown) exported so far (Debezium logs the count every 10 s and when a table is done).
	Table          string
	TableNo        int
	Tables         int
	Rows, Estimate int64
	// SnapshotRows are the rows of the tables the snapshot has finished.
	SnapshotRows int64
	// Snapshotted says this start took a snapshot (it was not resumed from offsets).
	Snapshotted bool
	// LastError is the last ERROR line of this start, if any.
	LastError string
}

func (p Progress) String() string {
	switch {
	case p.Phase == "snapshot" && p.Table != "":
		est := ""
		if p.Estimate > 0 {
			est = fmt.Sprintf(" of ~%d", p.Estimate)
		}
		return fmt.Sprintf("snapshot: %s (table %d of %d), %d%s rows exported", p.Table, p.TableNo, p.Tables, p.Rows, est)
	case p.Phase == "snapshot":
		return "snapshot: " + p.Step
	case p.Phase == "streaming" && p.Snapshotted:
		return fmt.Sprintf("streaming (after a snapshot of %d rows)", p.SnapshotRows)
	default:
		return p.Phase
	}
}

var (
	reStep     = regexp.MustCompile(`(Snapshot step \d+ - [^\n]*?)\s*$`)
	reExport   = regexp.MustCompile(`Exporting data from table '([^']+)' \((\d+) of (\d+) tables\)`)
	reExported = regexp.MustCompile(`Exported (\d+)(?: of (\d+))? records for table '([^']+)'`)
	reFinished = regexp.MustCompile(`Finished exporting (\d+) records for table '([^']+)' \((\d+) of (\d+) tables\)`)
)

// progressReader follows the log of the current start.
type progressReader struct {
	path   string
	offset int64
	rest   []byte
	p      Progress
}

func newProgressReader(path string, offset int64) *progressReader {
	return &progressReader{path: path, offset: offset, p: Progress{Phase: "starting"}}
}

// read parses what was appended since the last call.
func (r *progressReader) read() Progress {
	f, err := os.Open(r.path)
	if err != nil {
		return r.p
	}
	defer f.Close()
	if _, err := f.Seek(r.offset, io.SeekStart); err != nil {
		return r.p
	}
	b, err := io.ReadAll(io.LimitReader(f, 64<<20))
	if err != nil {
		return r.p
	}
	r.offset += int64(len(b))
	b = append(r.rest, b...)
	end := bytes.LastIndexByte(b, '\n')
	if end < 0 {
		r.rest = b
		return r.p
	}
	r.rest = append([]byte(nil), b[end+1:]...)
	for _, line := range strings.Split(string(b[:end]), "\n") {
		r.line(line)
	}
	return r.p
}

func (r *progressReader) line(line string) {
	p := &r.p
	switch {
	case reStep.MatchString(line): // only a snapshot has steps; a resumed start logs none
		p.Phase, p.Step, p.Snapshotted = "snapshot", reStep.FindStringSubmatch(line)[1], true
	case reExport.MatchString(line):
		m := reExport.FindStringSubmatch(line)
		p.Table, p.TableNo, p.Tables, p.Rows, p.Estimate = m[1], atoi(m[2]), atoi(m[3]), 0, 0
	case reFinished.MatchString(line):
		m := reFinished.FindStringSubmatch(line)
		p.SnapshotRows += int64(atoi(m[1]))
		p.Rows = int64(atoi(m[1]))
	case reExported.MatchString(line):
		m := reExported.FindStringSubmatch(line)
		p.Rows, p.Estimate = int64(atoi(m[1])), int64(atoi(m[2]))
	case strings.Contains(line, "Starting streaming"):
		p.Phase, p.Table, p.Step = "streaming", "", ""
	case strings.Contains(line, " ERROR "):
		p.LastError = strings.TrimSpace(line)
	}
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}
