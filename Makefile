# cloudsql-cache: `make run` to try it, `make test` to test it.
SHELL := /bin/bash
GO ?= go
export PATH := $(PATH):/usr/local/go/bin

STATE ?= .state
REDIS_PORT ?= 6390
MYSQL_PORT ?= 3307
PORT ?= 8080
READ_PORT ?= 8081
READ_METRICS_PORT ?= 9465
# RUN_FLAGS: more localrun flags, e.g. RUN_FLAGS='-rate 100 -extra "reader=go run ./examples/reader"'
RUN_FLAGS ?=
# FUZZTIME: a count, not a duration, so a starved CI machine fuzzes as much as a fast one and no
# worker is cut off by a wall-clock deadline; `make fuzz FUZZTIME=2m` for a longer search.
FUZZTIME ?= 50000x

.PHONY: run run-function verify-local test vet terraform-check fuzz bench bench-verify bench-read bench-hotrow memory cost build deps clean

## run: the whole pipeline: MariaDB → Debezium Server → Pub/Sub emulator → push relay → function → Redis,
## and the example read service (examples/rowservice) on READ_PORT, its consistency sampler on, its
## metrics on READ_METRICS_PORT
run: deps
	$(GO) build -o $(STATE)/bin/localrun ./cmd/localrun
	$(GO) build -o $(STATE)/bin/rowservice ./examples/rowservice
	$(STATE)/bin/localrun -state $(STATE) -mysql-port $(MYSQL_PORT) -redis-port $(REDIS_PORT) -port $(PORT) \
	  -extra "rowservice=PORT=$(READ_PORT) METRICS_ADDR=127.0.0.1:$(READ_METRICS_PORT) READ_SAMPLE_FRACTION=1 READ_SAMPLE_MAX_PER_SECOND=100 $(STATE)/bin/rowservice" $(RUN_FLAGS)

## verify-local: the drift checker against the database and cache `make run` started
verify-local:
	REDIS_ADDR=127.0.0.1:$(REDIS_PORT) $(GO) run ./cmd/verify -dsn 'root@tcp(127.0.0.1:$(MYSQL_PORT))/' -databases shop

## run-function: the apply function alone on the Functions Framework against a redis-server of its own
## under STATE (relative or absolute) on REDIS_PORT, which must be free; REDIS_ADDR uses another Redis
run-function: deps
	$(GO) run ./cmd/runfunction -state $(STATE) -redis-port $(REDIS_PORT) -port $(PORT)

## test: vet, all tests (race detector on), then each fuzz target briefly
test: deps vet terraform-check
	$(GO) test -race -count=1 -timeout 20m ./...
	$(MAKE) fuzz FUZZTIME=$(FUZZTIME)

## terraform-check: terraform fmt, init, validate and the terraform test suites against the real provider
## schemas (providers from ../shared/terraform-providers or TF_PROVIDER_MIRROR when present, else the
## registry; fails, never skips, without terraform or providers)
terraform-check:
	terraform/scripts/check

vet:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.state/*')); if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...

## fuzz: run every fuzz target for FUZZTIME (seed corpora also run in plain `go test`)
fuzz:
	$(GO) test ./function/push -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME)
	$(GO) test ./debezium -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME)
	$(GO) test ./debezium -run '^$$' -fuzz '^FuzzDecodeKey$$' -fuzztime $(FUZZTIME)
	$(GO) test ./debezium -run '^$$' -fuzz '^FuzzDecodeRoundTrip$$' -fuzztime $(FUZZTIME)
	$(GO) test ./debezium -run '^$$' -fuzz '^FuzzReadDDL$$' -fuzztime $(FUZZTIME)
	$(GO) test ./debezium -run '^$$' -fuzz '^FuzzDecodeCompact$$' -fuzztime $(FUZZTIME)
	$(GO) test ./debezium -run '^$$' -fuzz '^FuzzCompactMatchesFull$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/mysqlrow -run '^$$' -fuzz '^FuzzFromText$$' -fuzztime $(FUZZTIME)
	$(GO) test ./tablepolicy -run '^$$' -fuzz '^FuzzKeyTemplates$$' -fuzztime $(FUZZTIME)
	$(GO) test ./tablepolicy -run '^$$' -fuzz '^FuzzCompactResolvesLikeFull$$' -fuzztime $(FUZZTIME)

## bench: the benchmarks of BENCHMARKS.md, each beside its baseline measured in the same run (not part of `make test`)
bench: deps memory
	$(GO) test ./function/push ./debezium -run '^$$' -bench Decode -count 3
	$(GO) run ./cmd/benchapply -events 20000 -concurrency 1,8,32
	$(GO) run ./cmd/benchapply -wait -events 20000 -concurrency 1,8,32
	$(GO) run ./cmd/benchlag -rates 500,1000,2000,5000 -duration 20s
	$(GO) test ./readcache -run '^$$' -bench 'Hit|L1|Miss' -benchtime 3000x -count 3
	$(GO) test ./readcache -run '^$$' -bench Herd -benchtime 20x -count 3
	$(MAKE) bench-verify
	$(MAKE) bench-read
	$(MAKE) bench-hotrow

## bench-verify: verify on a table of a million rows: time, peak memory, database and Redis load (BENCHMARKS.md section 6)
bench-verify: deps
	$(GO) run ./cmd/benchverify -rows 1000000

## bench-read: the read-path experiment: miss modes, the L1, consistency under writes through the local
## pipeline (BENCHMARKS.md section 7; about 12 minutes)
bench-read: deps
	$(GO) run ./cmd/benchread -rows 100000 -read-rate 1000 -write-rates 0,100,1000 -warmup 3s -duration 15s

## bench-hotrow: one row updated at 100, 500 and 1,000/s, pushed with a 10 ms simulated round trip, ordered
## and unordered, and unordered without the round trip as the same run's baseline (BENCHMARKS.md section 10; about 5 minutes)
bench-hotrow: deps
	$(GO) run ./cmd/benchhotrow -rates 100,500,1000 -rtt 10ms -baseline -duration 15s

## cost: monthly cost at 1M, 10M and 100M events/hour from the measured costs and list prices
cost:
	$(GO) run ./cmd/costmodel -table

## memory: Redis bytes per cached row against a plain SET of the same JSON
memory: deps
	$(GO) test ./rowcache -run '^(TestMemoryOverhead|TestClusterMemory)$$' -count=1 -v

build:
	$(GO) build -o bin/cloudsql-cache-function ./cmd/cloudsql-cache-function

## deps: what the tests and `make run` need on a Debian machine
deps:
	@command -v redis-server >/dev/null || { echo "installing redis-server"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; }
	@command -v mariadbd >/dev/null || test -x /usr/sbin/mariadbd || { echo "installing mariadb-server"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-server mariadb-client >/dev/null; }
	@command -v mvn >/dev/null || { echo "installing maven (fetches Debezium Server)"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq maven >/dev/null; }
	@$(GO) mod download

clean:
	rm -rf bin $(STATE)
