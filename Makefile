# Fulcrum's build. Every target works on a fresh machine: tools come from the
# pinned modules under hack/tools and e2e/tools, built into the Go cache.
SHELL := /bin/bash
GO ?= go
TOOLS := $(GO) tool -modfile=hack/tools/go.mod
BIN := bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: deps all generate verify verify-generated lint build test chart-test fuzz unit e2e demo env clean

all: build

## generate: regenerate deepcopy code and the CRD YAML in manifests/crd.
generate:
	$(TOOLS) controller-gen object paths=./api/...
	$(TOOLS) controller-gen crd:allowDangerousTypes=true paths=./api/... output:crd:artifacts:config=manifests/crd

## verify: generated files are current, the code is formatted, vetted and linted.
verify: verify-generated lint

verify-generated: generate
	@git diff --exit-code -- api manifests/crd || { echo "generated files are stale: run 'make generate' and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- api manifests/crd)" || { git status --porcelain -- api manifests/crd; echo "generated files are untracked: run 'make generate' and commit"; exit 1; }

lint:
	@$(GO) mod tidy -diff >/dev/null || { echo "go.mod/go.sum are not tidy: run 'go mod tidy' and commit"; exit 1; }
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...
	$(TOOLS) staticcheck ./...

## build: the fulcrum server and the fulcrumctl CLI into bin/.
build:
	$(GO) build -o $(BIN)/ ./cmd/...

## deps: install the Debian packages the tests and demo need, if missing.
deps:
	@missing=""; \
	[ -x /usr/bin/prometheus ] || missing="$$missing prometheus"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

## test: every test, unit and integration against a real kube-apiserver and Prometheus.
test: deps
	$(GO) test -count=1 -timeout 25m ./...
	$(MAKE) chart-test
	$(MAKE) fuzz

## chart-test: the Helm chart's tests (their own module under charts/fulcrum/test, to keep Helm out of Fulcrum's).
## -mod=mod: the module replaces github.com/fulcrum-ml/fulcrum with this checkout,
## so a dependency added there must not break it before its go.sum is refreshed.
chart-test:
	cd charts/fulcrum/test && $(GO) vet -mod=mod ./... && $(GO) test -mod=mod -count=1 -timeout 10m ./...

## fuzz: a short coverage-guided run of each fuzz target (seeds also run in `test`).
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecodePlan -fuzztime 10s ./admin/intent

## unit: the fast tests only (no local cluster).
unit:
	$(GO) test -count=1 -short ./...

## e2e: end-to-end scenarios only.
e2e: deps
	$(GO) test -count=1 -timeout 20m ./e2e/...

## env: start the local Kubernetes environment and print how to reach it.
env: deps
	$(GO) run ./e2e/cmd/localenv

## demo: the local environment with a live canary and the dashboard.
demo: deps
	$(GO) run ./e2e/cmd/demo

clean:
	rm -rf $(BIN)
