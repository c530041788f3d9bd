package proccpu

import (
	"os"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	// A command name with a space and a parenthesis; utime 150 and stime 25 ticks.
	got, err := parse([]byte("4242 (my (odd) cmd) S 1 4242 4242 0 -1 4194560 100 0 0 0 150 25 0 0 20 0 3 0 1 1 1\n"))
	if err != nil || got != 1750*time.Millisecond {
		t.Fatalf("parse = %v, %v; want 1.75s", got, err)
	}
	for _, bad := range []string{"", "4242 (cmd S 1", "4242 (cmd) S 1 2", "4242 (cmd) S 1 4242 4242 0 -1 4194560 100 0 0 0 x 25"} {
		if _, err := parse([]byte(bad)); err == nil {
			t.Errorf("parse(%q) accepted", bad)
		}
	}
}

func TestOwnProcess(t *testing.T) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		d, err := Time(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if d > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("this process used no CPU time in 30 s of spinning")
		}
		for i := 0; i < 1e7; i++ {
		}
	}
}

func TestNoProcess(t *testing.T) {
	if _, err := Time(0); err == nil {
		t.Error("pid 0 accepted")
	}
}
