# millrace — `make run` runs the example pipelines on the embedded broker;
# `make test` runs every test, on the embedded broker and on real Apache Kafka.
GO      ?= go
BIN     := bin/millrace
PKGS    := ./...
# The Go of go.mod's toolchain line (fetched by the go command from the
# module proxy on first use), whatever Go the machine has: it carries the
# standard library's security fixes (README: Security).
export GOTOOLCHAIN := $(shell sed -n 's/^toolchain //p' go.mod)

.PHONY: build run test test-unit lint kafka deps clean bench

build:
	$(GO) build -o $(BIN) ./cmd/millrace

run: build
	$(BIN) run --api-addr 127.0.0.1:8080

# test installs what the tests need (kcat; the Kafka jars come from Maven
# Central on first use), starts one real Kafka broker for every package, and
# runs every test with the race detector.
test: deps build
	.ci/with-kafka .ci/gotest

# test-unit skips real Kafka (for a quick loop while coding; never in CI).
test-unit:
	MILLRACE_SKIP_KAFKA=1 $(GO) test -race -count=1 $(PKGS)

# lint: gofmt, go vet, go.sum verified against the modules' hashes, and
# govulncheck (.ci/vulncheck), which fails when the code calls a function
# with a known vulnerability.
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "not gofmt'ed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) mod verify
	.ci/vulncheck

# bench measures millrace beside raw sarama and a stock watermill-kafka stage,
# in one run, on the embedded broker and, where Java is present, on real Kafka
# (internal/bench). BENCHFLAGS adds flags, e.g. BENCHFLAGS='-rss-records 0 -out bench.md'.
BENCHFLAGS ?=
bench: build
	$(GO) run ./internal/bench -kafka -bin $(BIN) $(BENCHFLAGS)

# kafka starts a real single-node Apache Kafka in the foreground.
kafka:
	$(GO) run ./testkit/realkafka/cmd/kafka

deps:
	@.ci/deps

clean:
	rm -rf bin .millrace
