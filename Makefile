# sqlchaos — see README.md.
GO      ?= go
BIN     := bin/chaosrun
PKGS    := ./...
# Short runs for CI; `make soak` lifts the bounds.
TESTFLAGS ?= -short -timeout 14m
# make test replays CI's fixed seed, so it passes on any fresh machine;
# SQLCHAOS_SEED=random (or make soak) draws fresh seeds from the clock.
SQLCHAOS_SEED ?= 20261127

ACTIONLINT  := github.com/rhysd/actionlint/cmd/actionlint@v1.7.12
SOAK_SEEDS  ?= $(shell date -u +%Y%m%d)00..
SOAK_BUDGET ?= 30m
SOAK_OUT    ?= soak-out

.PHONY: build test run bench soak fuzz-prop lint clean

build:
	$(GO) build -o $(BIN) ./cmd/chaosrun

test: build
	SQLCHAOS_SEED=$(SQLCHAOS_SEED) $(GO) test $(TESTFLAGS) $(PKGS)

run: build
	./$(BIN) matrix

bench: build
	./$(BIN) bench

soak: build
	SQLCHAOS_SEED=random SQLCHAOS_SOAK=1 CHAOSRUN_BIN=$(CURDIR)/$(BIN) $(GO) test -timeout 90m -run 'Prop|Soak|Planted' $(PKGS)
	./$(BIN) soak --seeds $(SOAK_SEEDS) --budget $(SOAK_BUDGET) --keep failing --record-only --out $(SOAK_OUT)/shard-0
	./$(BIN) merge --out $(SOAK_OUT)/merged $(SOAK_OUT)

fuzz-prop:
	$(GO) test -run '^$$' -fuzz FuzzDetectorHonesty -fuzztime 10m ./prop

lint:
	gofmt -l . | (! grep .) || (echo "gofmt needed on the files above"; exit 1)
	$(GO) vet $(PKGS)
	$(GO) run $(ACTIONLINT) .github/workflows/soak.yml
	cd deploy/k8s && $(GO) vet . && $(GO) test .

clean:
	rm -rf bin
