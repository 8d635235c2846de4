# Patchgate. `make run` builds and serves configs/dev.yaml; `make test` runs every test.
SHELL      := /bin/bash
GO         ?= go
VERSION    ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT     ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
DATE       ?= $(shell date -u -d @$${SOURCE_DATE_EPOCH:-$$(git log -1 --format=%ct 2>/dev/null || date +%s)} +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS    := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.date=$(DATE)
GOFLAGS_B  := -trimpath -ldflags '$(LDFLAGS)'
export CGO_ENABLED = 0

.PHONY: all build run test test-short lint bench curves clean cross restore-drill agent-packages

all: build

build:
	$(GO) build $(GOFLAGS_B) -o bin/patchgate ./cmd/patchgate

run: build
	bin/patchgate serve --config configs/dev.yaml

# The race detector needs cgo; everything else is built without it.
test:
	CGO_ENABLED=1 $(GO) test -race -timeout 20m ./...

test-short:
	CGO_ENABLED=1 $(GO) test -race -short ./...

# The restore drill alone: an appliance with users, rollouts, exceptions and audit records
# is backed up, restored into a fresh state directory, compared table by table, verified.
restore-drill:
	CGO_ENABLED=1 $(GO) test -race -count=1 -v -run '^TestRestoreDrill$$' ./appliance/

lint:
	@test -z "$$(gofmt -l . | tee /dev/stderr)" || (echo "gofmt: files above need formatting"; exit 1)
	$(GO) vet ./...
	@if $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.6.1 -version >/dev/null 2>&1; then \
		$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.6.1 ./...; \
	else echo "staticcheck: not available from the module proxy; skipped"; fi

# Needs nginx, unbound, dnsperf and wrk (see README); benchmarks without theirs skip.
bench:
	$(GO) test -run '^$$' -bench . -benchtime 3x -timeout 60m ./test/bench/...

# Scale curves at the sizes of issue 22 (long: about an hour on 2 vCPUs, and ~11 GiB of
# memory for the million-object cache point), CSV and SVG into test/bench/plots; `make
# bench` runs them at small sizes into test/bench/out/curves.
curves:
	PG_CURVES=full PG_CURVES_OUT=$(CURDIR)/test/bench/plots $(GO) test -run '^$$' -bench Curve -benchtime 1x -timeout 120m ./test/bench/curves

# Agent builds for the endpoints Patchgate serves (patchgate-agent: the agent alone), and
# the whole patchgate for Linux (the appliance's capture and nftables parts are Linux-only).
cross:
	@for p in linux/amd64 linux/arm64 windows/amd64 windows/arm64 darwin/amd64 darwin/arm64; do \
		os=$${p%/*}; arch=$${p#*/}; ext=; [ $$os = windows ] && ext=.exe; \
		echo "build $$p"; GOOS=$$os GOARCH=$$arch $(GO) build $(GOFLAGS_B) -o bin/patchgate-agent-$$os-$$arch$$ext ./cmd/patchgate-agent || exit 1; \
		if [ $$os = linux ]; then GOOS=$$os GOARCH=$$arch $(GO) build $(GOFLAGS_B) -o bin/patchgate-$$os-$$arch ./cmd/patchgate || exit 1; fi; \
	done

# The agent's Linux packages (.deb and .rpm for amd64 and arm64) into dist/, built with
# nfpm (tools/nfpm, its own module: the main go.mod does not carry it). See agent/README.md.
AGENT_PKG_VERSION ?= $(shell echo '$(VERSION)' | sed -E 's/^v//; /^[0-9]/!s/^/0.0.0+/; s/-/~/g')
agent-packages:
	@mkdir -p dist bin
	$(GO) -C tools/nfpm build -o $(CURDIR)/bin/nfpm github.com/goreleaser/nfpm/v2/cmd/nfpm
	@for arch in amd64 arm64; do \
		echo "package linux/$$arch"; \
		GOOS=linux GOARCH=$$arch $(GO) build $(GOFLAGS_B) -o bin/patchgate-agent-linux-$$arch ./cmd/patchgate-agent || exit 1; \
		for f in deb rpm; do \
			ARCH=$$arch VERSION='$(AGENT_PKG_VERSION)' BIN=bin/patchgate-agent-linux-$$arch \
				bin/nfpm package -f packaging/agent/nfpm.yaml -p $$f -t dist/ || exit 1; \
		done; \
	done
agent-msi: ; GOOS=windows GOARCH=amd64 $(GO) build $(GOFLAGS_B) -o bin/patchgate-agent-windows-amd64.exe ./cmd/patchgate-agent && packaging/agent/msi.sh bin/patchgate-agent-windows-amd64.exe '$(AGENT_PKG_VERSION)' dist # the Windows agent's MSI (wixl), agent/README.md

clean:
	rm -rf bin state test/bench/out dist

-include image/image.mk
