# Fulcrum's build. Every target works on a fresh machine: tools come from the
# pinned modules under hack/tools and e2e/tools, built into the Go cache.
SHELL := /bin/bash
GO ?= go
TOOLS := $(GO) tool -modfile=hack/tools/go.mod
BIN := bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# What the binaries and the image are stamped with (cmd/internal/version).
VERSION ?= $(shell git describe --tags --always --dirty)
COMMIT ?= $(shell git rev-parse HEAD)
LDFLAGS := -X github.com/fulcrum-ml/fulcrum/cmd/internal/version.version=$(VERSION) -X github.com/fulcrum-ml/fulcrum/cmd/internal/version.commit=$(COMMIT)
# The container image: an OCI layout written by hack/image, pushed to IMAGE.
IMAGE_DIR ?= $(BIN)/image
PLATFORMS ?= linux/amd64,linux/arm64
IMAGE ?= ghcr.io/fulcrum-ml/fulcrum:$(VERSION)
CA_CERTS := /etc/ssl/certs/ca-certificates.crt

.PHONY: deps all generate verify verify-generated lint build test chart-test install-guide-test image image-push image-test fuzz unit e2e istio-test demo env bench-peers clean

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
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/...

## deps: install the Debian packages the tests and demo need, if missing.
deps:
	@missing=""; \
	[ -x /usr/bin/prometheus ] || missing="$$missing prometheus"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	[ -f $(CA_CERTS) ] || missing="$$missing ca-certificates"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

## test: every test, unit and integration against a real kube-apiserver and Prometheus.
test: deps
	$(GO) test -count=1 -timeout 25m ./...
	$(MAKE) chart-test
	$(MAKE) install-guide-test
	$(MAKE) image-test
	$(MAKE) fuzz

## chart-test: the Helm chart's tests (their own module under charts/fulcrum/test, to keep Helm out of Fulcrum's).
## -mod=mod: the module replaces github.com/fulcrum-ml/fulcrum with this checkout,
## so a dependency added there must not break it before its go.sum is refreshed.
chart-test:
	cd charts/fulcrum/test && $(GO) vet -mod=mod ./... && $(GO) test -mod=mod -count=1 -timeout 10m ./...

## install-guide-test: the commands of docs/install.md, built, rendered, dry-run on the local
## kube-apiserver or run as far as this machine allows (their own module under docs/installtest,
## to keep Helm and a shell parser out of Fulcrum's).
install-guide-test:
	cd docs/installtest && $(GO) vet -mod=mod ./... && $(GO) test -mod=mod -count=1 -timeout 10m ./...

## image: the container image for PLATFORMS as an OCI image layout in IMAGE_DIR, built
## without a container runtime (hack/image); prints the digests and sizes. Only Debian's
## ca-certificates is needed, so this installs it alone rather than running `make deps`.
image:
	@[ -f $(CA_CERTS) ] || { $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends ca-certificates; }
	$(GO) -C hack/image run . -root "$(CURDIR)" -out "$(abspath $(IMAGE_DIR))" -platforms "$(PLATFORMS)" -version "$(VERSION)" -commit "$(COMMIT)" -ca-certs $(CA_CERTS)

## image-push: push IMAGE_DIR to IMAGE with crane (pinned in hack/image); log in first with
## `go -C hack/image tool crane auth login ghcr.io -u USER --password-stdin`.
image-push:
	$(GO) -C hack/image tool crane push "$(abspath $(IMAGE_DIR))" "$(IMAGE)"

## image-test: the image builder's own tests (its module under hack/image, to keep
## go-containerregistry out of Fulcrum's). The real image is tested by `go test ./cmd/fulcrum`.
image-test:
	cd hack/image && $(GO) vet ./... && $(GO) tool -modfile=../tools/go.mod staticcheck ./... && $(GO) test -count=1 ./...

## fuzz: a short coverage-guided run of each fuzz target (seeds also run in `test`).
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecodePlan -fuzztime 5s ./admin/intent
	$(GO) test -run '^$$' -fuzz FuzzTemplateValidation -fuzztime 5s ./analysis/templates
	$(GO) test -run '^$$' -fuzz FuzzTenancyRewrite -fuzztime 5s ./analysis/templates
	# The webhook's corpus takes seconds to replay before fuzzing starts, and
	# -fuzztime counts that time: shorter fails with context deadline exceeded.
	$(GO) test -run '^$$' -fuzz FuzzAdmissionReview -fuzztime 10s ./webhook
	$(GO) test -run '^$$' -fuzz FuzzSetWeights -fuzztime 5s ./router/istio

## unit: the fast tests only (no local cluster).
unit:
	$(GO) test -count=1 -short ./...

## e2e: end-to-end scenarios only.
e2e: deps
	$(GO) test -count=1 -timeout 20m ./e2e/...

## istio-test: the real-Istio suite (its own module under e2e/istio): istiod, built from the
## istio.io/istio module pinned in e2e/tools/istio and cached like the Kubernetes binaries,
## validates every VirtualService Fulcrum writes and routes gRPC's proxyless xDS clients by
## them. Not part of `make test` (it would pass its 15 minutes); .ci/run runs both.
istio-test: deps
	cd e2e/istio && $(GO) vet -mod=mod ./... && $(GO) test -mod=mod -count=1 -timeout 30m ./...

## env: start the local Kubernetes environment and print how to reach it.
## env and demo build their command and run the binary: `go run` exits 1 on
## Ctrl-C whatever the program returns, and make would report an error.
env: deps
	$(GO) build -o $(BIN)/localenv ./e2e/cmd/localenv
	$(BIN)/localenv

## demo: the local environment with a live canary and the dashboard; flags of
## e2e/cmd/demo in DEMO_FLAGS (e.g. DEMO_FLAGS='-candidate-error-rate 0.05').
demo: deps
	$(GO) build -o $(BIN)/demo ./e2e/cmd/demo
	$(BIN)/demo $(DEMO_FLAGS)

## bench-peers: Flagger and Argo Rollouts (built from their Go modules) and Fulcrum on one
## local environment with the same traffic; prints one table (docs/peers.md). Not part of
## `make test`. REPEAT=N runs of each system on each profile; BENCH_FLAGS for more flags
## (e.g. BENCH_FLAGS='-systems flagger,fulcrum -profiles bad-1000rps').
REPEAT ?= 2
bench-peers: deps
	$(GO) run ./e2e/cmd/benchpeers -repeat $(REPEAT) $(BENCH_FLAGS)

clean:
	rm -rf $(BIN)
