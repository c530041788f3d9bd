package loadgen

import (
	"context"
	"testing"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/internal/mariadbserver"
)

// The load offers exactly rate × time row changes, each statement's rows carry its number, and every
// statement of the measured window has its commit time.
func TestOfferedLoad(t *testing.T) {
	srv := mariadbserver.StartForTest(t, mariadbserver.Options{})
	db := srv.DB("")
	g, err := New(Config{DB: db, Keys: 40, Batch: 5, Conns: 4, RowBytes: 10})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := g.CreateTable(ctx); err != nil {
		t.Fatal(err)
	}
	var l Load
	g.Offer(ctx, 400, 100*time.Millisecond, 150*time.Millisecond, &l)
	if l.Committed() != 100 || l.Failed() != 0 {
		t.Fatalf("committed %d row changes (%d statements failed), want 400/s × 250 ms = 100", l.Committed(), l.Failed())
	}
	first, last := l.Window()
	if first == 0 || last < first {
		t.Fatalf("measured window %d…%d", first, last)
	}
	for seq := first; seq <= last; seq++ {
		if _, ok := g.CommitTime(seq); !ok {
			t.Fatalf("statement %d has no commit time", seq)
		}
	}
	var rows, maxSeq int64
	if err := db.QueryRow("SELECT COUNT(*), MAX(seq) FROM "+Table).Scan(&rows, &maxSeq); err != nil {
		t.Fatal(err)
	}
	if rows < 40 || maxSeq < last {
		t.Fatalf("%d rows, newest seq %d (last statement %d)", rows, maxSeq, last)
	}
	g.ForgetCommits()
	if _, ok := g.CommitTime(first); ok {
		t.Fatal("a commit time kept after ForgetCommits")
	}
	if _, err := New(Config{DB: db, Keys: 2, Batch: 1, Conns: 4, RowBytes: 1}); err == nil {
		t.Fatal("fewer keys than connections accepted")
	}
}
