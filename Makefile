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
deps: ## install what the tests need (Azurite from npm; HAProxy, cloud-init, promtool from apt), idempotently
	bash scripts/install-azurite.sh
	bash scripts/install-haproxy.sh
	bash scripts/install-cloud-init.sh
	bash scripts/install-promtool.sh

.PHONY: fmt-check
fmt-check: ## fail if gofmt would change a file
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.tools/*')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

.PHONY: vet
vet: ## go vet for Linux and Windows (and the bench-only leanh1 build)
	$(GO) vet ./...
	GOOS=windows $(GO) vet ./...
	$(GO) vet -tags leanh1 ./proxy/ ./cmd/baton/internal/node/

.PHONY: lint
lint: fmt-check vet ## gofmt, go vet (Linux and Windows), Windows build, staticcheck
	GOOS=windows $(GO) build ./...
	$(TOOLS) staticcheck ./...

.PHONY: test
test: deps lint ## the whole suite: lint, unit tests with -race, integration tests, the Windows build under Wine
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...
	$(MAKE) --no-print-directory test-windows

.PHONY: e2e
e2e: deps ## the failover matrix through HAProxy with a printed table
	@mkdir -p $(BIN); set -o pipefail; \
	BATON_E2E_FULL=1 $(GO) test -count=1 -v -timeout 20m -run '^TestLB' ./e2e/ 2>&1 | tee $(BIN)/e2e.log | \
		grep --line-buffered -E '^(--- |ok |FAIL|PASS$$)'; rc=$$?; \
	echo; grep -o 'E2E |.*' $(BIN)/e2e.log | sed 's/^E2E //'; \
	echo; echo "details: $(BIN)/e2e.log"; exit $$rc

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

.PHONY: deb
deb: ## build bin/pkg/baton_VERSION-1_amd64.deb (nfpm; systemd unit, conffile, man page)
	VERSION='$(VERSION)' GO='$(GO)' bash packaging/scripts/build-deb.sh

.PHONY: msi
msi: ## build bin/pkg/baton-VERSION-x64.msi (wixl); sign with SIGN_CERT=cert.pem SIGN_KEY=key.pem
	VERSION='$(VERSION)' GO='$(GO)' SIGN_CERT='$(SIGN_CERT)' SIGN_KEY='$(SIGN_KEY)' \
		SIGN_TIMESTAMP='$(SIGN_TIMESTAMP)' bash packaging/scripts/build-msi.sh

.PHONY: test-packages
test-packages: ## .deb and .msi tests (root: dpkg -i/upgrade/purge here; lintian, systemd-analyze, msiinfo)
	VERSION='$(VERSION)' GO='$(GO)' bash packaging/test/test-deb.sh
	VERSION='$(VERSION)' GO='$(GO)' bash packaging/test/test-msi.sh

.PHONY: test-windows
test-windows: ## baton.exe, the .msi and the Windows service under Wine (root: installs Wine and MinGW-w64 from apt)
	sh scripts/install-wine.sh
	VERSION='$(VERSION)' GO='$(GO)' bash packaging/test/test-windows.sh

.PHONY: test-systemd
test-systemd: build deb ## boot Debian 12 (debootstrap, systemd-nspawn) and run the .deb under systemd (root)
	VERSION='$(VERSION)' GO='$(GO)' bash packaging/test/test-systemd.sh

.PHONY: bench
bench: build ## data plane vs HAProxy and Caddy (wrk, loopback, ~15 min) and the Go benchmarks
	bash bench/bench.sh

.PHONY: tls-audit
tls-audit: build ## run testssl.sh against a local baton with a test certificate
	bash scripts/tls-audit.sh

.PHONY: h2spec
h2spec: build ## run h2spec (HTTP/2 conformance) against a local baton's HTTPS listener
	bash scripts/h2spec.sh

.PHONY: clean
clean: ## remove build output
	rm -rf $(BIN)
