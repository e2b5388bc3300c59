# baton's entry point. `make help` lists the targets.
SHELL   := /bin/bash
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
BIN     := bin
TOOLS   := $(GO) tool -modfile=tools/go.mod
# Integration tests start real processes; keep them bounded.
TEST_TIMEOUT ?= 12m

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z][a-z0-9-]*:.*## ' $(MAKEFILE_LIST) | sort | \
		awk 'BEGIN {FS = ":.*## "}; {printf "  make %-14s %s\n", $$1, $$2}'

.PHONY: build
build: ## build bin/baton and bin/demoapp
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/baton ./cmd/baton
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/demoapp ./demo/app

.PHONY: deps
deps: ## install what the tests need (Azurite from npm), idempotently
	bash scripts/install-azurite.sh

.PHONY: fmt-check
fmt-check: ## fail if gofmt would change a file
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.tools/*')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

.PHONY: vet
vet: ## go vet for Linux and Windows
	$(GO) vet ./...
	GOOS=windows $(GO) vet ./...

.PHONY: lint
lint: fmt-check vet ## gofmt, go vet (Linux and Windows), staticcheck
	$(TOOLS) staticcheck ./...

.PHONY: test
test: deps lint ## the whole suite: lint, unit tests with -race, integration tests
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...

.PHONY: test-short
test-short: ## unit tests only (no real processes, no Azurite)
	$(GO) test -race -short -count=1 ./...

.PHONY: fuzz
fuzz: ## run the config fuzzer for a minute
	$(GO) test -run='^$$' -fuzz=FuzzLoad -fuzztime=60s ./config/

.PHONY: demo
demo: build ## two baton nodes on this machine hand the active role to each other
	$(GO) build -o $(BIN)/baton-demo ./demo
	$(BIN)/baton-demo

.PHONY: clean
clean: ## remove build output
	rm -rf $(BIN)
