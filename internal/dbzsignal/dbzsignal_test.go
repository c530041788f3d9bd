package dbzsignal

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/cloudsql-cache/cloudsql-cache/internal/mariadbserver"
)

func TestValidateRefusesAConditionThatEscapesItsParentheses(t *testing.T) {
	for _, where := range []string{"1) OR (1", "n = 1) OR 1 = 1 OR (n = 2", "(n = 1", "n = 'x", "n = 1)"} {
		if err := (Snapshot{DB: "shop", Table: "orders", Where: where}).Validate(); err == nil {
			t.Errorf("%q: accepted", where)
		}
	}
	for _, where := range []string{"n = 1 OR n = 2", "name = ')' OR name = '('", `name = 'it''s (' OR name = "a\"("`, "(a OR b) AND (c OR d)", "`we(ird` = 1"} {
		if err := (Snapshot{DB: "shop", Table: "orders", Where: where}).Validate(); err != nil {
			t.Errorf("%q: %v", where, err)
		}
	}
}

// TestFilterKeepsTheChunkBounds runs the filter the signal carries in the shape Debezium builds its
// chunk query (JdbcConnection.buildSelectWithRowLimits: WHERE <bounds> AND <filter>, the filter as
// written): a condition with OR must not read rows outside the chunk's key range.
func TestFilterKeepsTheChunkBounds(t *testing.T) {
	srv := mariadbserver.StartForTest(t, mariadbserver.Options{})
	db := srv.DB("")
	srv.Exec(db, "CREATE DATABASE shop", "CREATE TABLE shop.orders (id INT PRIMARY KEY, n INT)",
		"INSERT INTO shop.orders VALUES (1, 1), (2, 2), (3, 1), (4, 2), (5, 3)")
	s := Snapshot{DB: "shop", Table: "orders", Where: "n = 1 OR n = 2"}
	data, err := s.Data()
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Conditions []struct {
			Filter string `json:"filter"`
		} `json:"additional-conditions"`
	}
	if err := json.Unmarshal([]byte(data), &d); err != nil || len(d.Conditions) != 1 {
		t.Fatalf("data %s: %v", data, err)
	}
	rows, err := db.Query("SELECT id FROM shop.orders WHERE `id` > ? AND "+d.Conditions[0].Filter+" ORDER BY `id` LIMIT 10", 2)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []int
	for rows.Next() {
		var id int
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		got = append(got, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != 3 || got[1] != 4 {
		t.Errorf("the chunk after id 2 with filter %s read ids %v, want [3 4]", d.Conditions[0].Filter, got)
	}
	if err := Check(context.Background(), db, "shop", Snapshot{DB: "shop", Table: "orders", Where: "nope = 1"}); err == nil || !strings.Contains(err.Error(), "no signal table") {
		t.Errorf("Check without a signal table: %v", err)
	}
}
