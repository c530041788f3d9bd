package main

import (
	"bytes"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/function/apply"
	"github.com/cloudsql-cache/cloudsql-cache/internal/redisserver"
	"github.com/cloudsql-cache/cloudsql-cache/rowcache"
	"github.com/cloudsql-cache/cloudsql-cache/tablepolicy"
)

// BenchmarkHandler runs the apply handler in-process on the same workload as the command, against a
// real redis-server, for profiling the hot path:
//
//	go test ./cmd/benchapply -run '^$' -bench Handler -cpuprofile cpu.out && go tool pprof -top cpu.out
func BenchmarkHandler(b *testing.B) {
	rs := redisserver.StartForTest(b, redisserver.Options{})
	p, err := tablepolicy.New(tablepolicy.Config{})
	if err != nil {
		b.Fatal(err)
	}
	h, err := apply.New(apply.Options{Store: rowcache.NewStore(rs.Client(), time.Hour), Policy: p})
	if err != nil {
		b.Fatal(err)
	}
	bodies, _ := workload(20000, 10000)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/", bytes.NewReader(bodies[i%len(bodies)])))
		if rec.Code != 200 {
			b.Fatalf("status %d", rec.Code)
		}
		i++
	}
}
