# phoneshop — targets a newcomer guesses. `make run` and `make test` are the README's two commands.
SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin
CHROMIUM := /usr/bin/chromium
PROTOACTOR_VERSION := v0.0.0-20240822202345-3c0e61ca19c9
PROTOBUF_VERSION := $(shell $(GO) list -m -f '{{.Version}}' google.golang.org/protobuf)

.PHONY: run build test test-with-servers test-short lint proto bench tools clean cluster cluster-down chromium fuzz

## run: build and start the whole shop in one process on embedded defaults (:8080, data in ./data)
run: build
	$(BIN)/phoneshop dev $(ARGS)

## build: compile phoneshop and shopctl (the marketing and ops command line) into bin/
build:
	$(GO) build -o $(BIN)/phoneshop ./cmd/phoneshop
	$(GO) build -o $(BIN)/shopctl ./cmd/shopctl

## test: every test (what CI runs): all with the race detector, then without it the
## multi-member tests (TestCluster*, marked by shoptest.MultiMember: several
## protoactor members in one process race inside protoactor-go) and the load tests at
## the shipped hashing cost (TestShipped*, marked by shoptest.ShippedCost: the
## detector makes argon2id 8x slower). The marks skip under -race and fail a test
## named otherwise. The real-process cluster tests (cmd/phoneshop) run under -race.
## Both passes run inside one scripts/testservices.sh: it uses the MariaDB, Redis and
## RabbitMQ that answer at the tests' addresses, and starts a private one (from Debian's
## packages, installed with apt-get when missing) in tmp/testservices/ for each that does
## not, stopped and deleted at the end
test: $(BIN)/consul $(BIN)/mailpit $(CHROMIUM)
	bash scripts/testservices.sh -- $(MAKE) --no-print-directory test-with-servers

## test-with-servers: the two passes of `make test`, against servers that already run
## (the tests' addresses: PHONESHOP_TEST_MYSQL_DSN, _REDIS_ADDR, _RABBITMQ_URL)
test-with-servers:
	$(GO) test -race -count=1 -timeout 30m ./...
	$(GO) test -count=1 -timeout 30m -run '^(TestCluster|TestShipped)' ./...

## test-short: tests that need no server (no MariaDB/Redis/RabbitMQ)
test-short:
	$(GO) test -race -short -count=1 ./...

## lint: gofmt and go vet
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

## fuzz: each fuzz target of the edge's request parsing in turn (go test -list finds them), for
## FUZZTIME each; an input that fails is saved under edge/testdata/fuzz/<target>/: commit it
## with the fix, and plain `go test` replays it from then on. Go 1.26's fuzzing coordinator may
## fail a target at the end of FUZZTIME with a bare "context deadline exceeded" and no input
## (go.dev/issue/75804, fixed in Go 1.27): that is reported and the next target runs
FUZZTIME ?= 30s
fuzz:
	@set -o pipefail; \
	targets=$$($(GO) test -list '^Fuzz' ./edge/ | grep '^Fuzz'); \
	[ -n "$$targets" ] || { echo "fuzz: no fuzz targets found in ./edge/"; exit 1; }; \
	log=$$(mktemp); trap 'rm -f "$$log"' EXIT; \
	for target in $$targets; do \
		echo "fuzz: $$target for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) ./edge/ 2>&1 | tee "$$log" && continue; \
		if grep -qxE '\s+context deadline exceeded' "$$log" && ! grep -q 'Failing input written to' "$$log"; then \
			echo "fuzz: $$target stopped by Go's fuzztime race (go.dev/issue/75804), nothing found"; continue; \
		fi; \
		exit 1; \
	done

## bench: the flash-sale benchmark against phoneshop dev on MariaDB and Redis (and a
## durable redis-server it starts); writes docs/benchmarks/flash-sale.{md,json},
## group-commit.txt and mail.txt, and the flash sale's CPU profile to
## tmp/bench/flash-cpu.pprof (under 10 minutes)
bench: $(BIN)/consul $(BIN)/mailpit
	bash bench/run.sh

## proto: regenerate protos/<service>pb/*.pb.go (one Go package per grain service: the generator
## emits a package-level helper per service file) (installs protoc from Debian if missing)
proto: $(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grain
	@command -v protoc >/dev/null || { echo "installing protoc (Debian protobuf-compiler)"; apt-get update -qq && apt-get install -y -qq protobuf-compiler; }
	PATH=$(BIN):$$PATH protoc -I protos -I /usr/include \
		-I $$($(GO) list -m -f '{{.Dir}}' github.com/asynkron/protoactor-go) \
		--go_out=. --go_opt=module=phoneshop \
		--go-grain_out=. --go-grain_opt=module=phoneshop \
		protos/*.proto

$(BIN)/protoc-gen-go:
	GOBIN=$(BIN) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOBUF_VERSION)

$(BIN)/protoc-gen-go-grain:
	GOBIN=$(BIN) $(GO) install github.com/asynkron/protoactor-go/protobuf/protoc-gen-go-grain@$(PROTOACTOR_VERSION)

## cluster: Consul (127.0.0.1:8500), 3 nodes, 2 edges (127.0.0.1:8081, :8082), a mailer and Mailpit
## (SMTP 127.0.0.1:1025, inbox http://127.0.0.1:8025) against the running MariaDB, Redis and RabbitMQ,
## in the background (logs and pids in tmp/cluster/)
cluster: build $(BIN)/consul $(BIN)/mailpit
	bash scripts/cluster.sh up

## cluster-down: stop what make cluster started
cluster-down:
	bash scripts/cluster.sh down

## chromium: Debian's Chromium, which the web page tests drive headless (TestBrowser*);
## installed with apt-get when missing (a missing browser fails those tests)
chromium: $(CHROMIUM)

$(CHROMIUM):
	apt-get update -qq && apt-get install -y -qq chromium

## bin/consul: the Consul agent of the dev cluster and of the tests, built from the Go
## module proxy in its own module (tools/consul pins it); about 6 minutes the first time
$(BIN)/consul: tools/consul/go.mod tools/consul/go.sum
	cd tools/consul && $(GO) build -o $(BIN)/consul github.com/hashicorp/consul

## bin/mailpit: the SMTP server the e-mail tests send to (notify/mail), built from the Go
## module proxy in its own module (tools/mailpit pins it), like bin/consul
$(BIN)/mailpit: tools/mailpit/go.mod tools/mailpit/go.sum
	cd tools/mailpit && $(GO) build -o $(BIN)/mailpit github.com/axllent/mailpit

# The same targets by their relative names: `make bin/consul`, `make bin/mailpit`.
bin/consul: $(BIN)/consul
bin/mailpit: $(BIN)/mailpit

clean:
	rm -rf bin
