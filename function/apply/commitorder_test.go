package apply_test

import "testing"

// Reproduced on MariaDB 10.11 (an updated_at DATETIME(6) ON UPDATE CURRENT_TIMESTAMP(6)): B's UPDATE
// of row 1 started first but waited for a lock another transaction held on row 0; A updated row 1 and
// committed meanwhile; B then updated row 1 and committed last. The database keeps B, whose updated_at
// (its statement's start, 22:17:58.734794) is older than A's (22:17:59.035182). The binlog has A at
// 1570 and B at 1820. Ordered by binlog position, the cache ends with B, as the database does.
func TestCommitOrderWinsOverAnEarlierUpdatedAt(t *testing.T) {
	e := newEnv(t)
	a := `{"id":1,"v":"A","updated_at":1796163479035182}`
	b := `{"id":1,"v":"B","updated_at":1796163478734794}`
	e.mustDeliver(event("r", "t", 'u', 1, 1570, 0, `{"id":1,"v":"init","updated_at":1796163478000000}`, a), `{"id":1}`, "applied")
	e.mustDeliver(event("r", "t", 'u', 1, 1820, 0, a, b), `{"id":1}`, "applied")
	if got := e.get("r.t:1"); got != b {
		t.Fatalf("cached %s, want the committed winner %s", got, b)
	}
}
