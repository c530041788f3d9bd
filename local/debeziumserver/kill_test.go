package debeziumserver_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// SIGKILL mid-snapshot and mid-stream: Debezium commits nothing on the way down, so the restart
// resumes from the last offset it had flushed (offset.flush.interval.ms, 5 s): a killed snapshot is
// taken again from the start (and so is one killed before the first flush after it finished), a killed
// stream is replayed from the last flushed position. Nothing may be missing; duplicates are counted
// and reported.
func TestKillReplay(t *testing.T) {
	s := newStack(t, []string{"app.seq"}, nil, nil)
	db := s.mysql.DB("app")
	s.exec(db, "CREATE TABLE seq (id INT NOT NULL PRIMARY KEY, note VARCHAR(40) NOT NULL)")
	const snapRows = 2000
	for i := 0; i < snapRows; i += 1000 {
		q := "INSERT INTO seq VALUES "
		for j := i + 1; j <= i+1000; j++ {
			if j > i+1 {
				q += ","
			}
			q += fmt.Sprintf("(%d,'snapshot row %d')", j, j)
		}
		s.exec(db, q)
	}
	srv := s.start()
	// Kill as soon as the snapshot is publishing.
	first := s.waitMessages("local.app.seq", 1, time.Minute)
	srv.Kill()
	// What the killed process had already sent may still be landing in the emulator: wait until
	// nothing more comes, so every message after killedAt is the restart's.
	killedAt := len(s.messages("local.app.seq"))
	for {
		time.Sleep(time.Second)
		n := len(s.messages("local.app.seq"))
		if n == killedAt {
			break
		}
		killedAt = n
	}
	t.Logf("killed mid-snapshot after %d of %d snapshot rows were published (first marker %v)", killedAt, snapRows, first[0].source()["snapshot"])
	if killedAt >= snapRows {
		t.Fatalf("the snapshot finished before the kill (%d messages): make the table larger", killedAt)
	}
	restart := time.Now()
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	all := s.waitMessages("local.app.seq", killedAt+snapRows, 2*time.Minute)
	t.Logf("the restarted snapshot published %d rows in %v", len(all)-killedAt, time.Since(restart))
	seen := map[string]int{}
	for _, m := range all[killedAt:] {
		if m.op() != "r" {
			t.Fatalf("op %s during the second snapshot", m.op())
		}
		seen[m.Key]++
	}
	if len(seen) != snapRows {
		t.Fatalf("the second snapshot covered %d of %d rows", len(seen), snapRows)
	}

	// Until the first offset flush after the snapshot (offset.flush.interval.ms=5000), the stored offset
	// still says "snapshot running", and a kill then means a third snapshot: wait past it.
	time.Sleep(6 * time.Second)

	// Mid-stream: a writer inserts one row per statement; Debezium is killed after 1.5 s and restarted
	// a second later.
	base := len(s.messages("local.app.seq"))
	var wg sync.WaitGroup
	stop := make(chan struct{})
	next := snapRows
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			next++
			if _, err := db.Exec("INSERT INTO seq VALUES (?, 'streamed')", next); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	time.Sleep(1500 * time.Millisecond)
	srv.Kill()
	killedStream := len(s.messages("local.app.seq")) - base
	time.Sleep(time.Second)
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	wg.Wait()
	streamed := next - snapRows
	deadline := time.Now().Add(time.Minute)
	for {
		seen = map[string]int{}
		var dups int
		for _, m := range s.messages("local.app.seq")[base:] {
			if m.op() != "c" {
				t.Fatalf("op %s after a mid-stream kill: %s", m.op(), m.Data)
			}
			seen[m.Key]++
			if seen[m.Key] == 2 {
				dups++
			}
		}
		if len(seen) == streamed {
			t.Logf("mid-stream kill: %d rows inserted, %d published before the kill, %d published twice (replayed from the last flushed offset)", streamed, killedStream, dups)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the mid-stream kill %d of %d inserted rows arrived", len(seen), streamed)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
