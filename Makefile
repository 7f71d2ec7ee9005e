# Bosun's build. `make help` lists the targets.
SHELL := /usr/bin/env bash
.DEFAULT_GOAL := build

MODULES := gen pkg services/apiserver services/scheduler services/controller \
           services/health-checker services/service-proxy services/node-agent tools tests \
           examples/hello
SERVICES := apiserver scheduler controller health-checker service-proxy node-agent
TOOLBIN := $(CURDIR)/.bin/tools
BIN := $(CURDIR)/bin
export PATH := $(TOOLBIN):$(PATH)
export HELM := $(TOOLBIN)/helm
DEVTOOLS := tools/devtools/go.mod
GO_TOOLS := buf protoc-gen-go protoc-gen-go-grpc protoc-gen-grpc-gateway protoc-gen-openapiv2 grpcurl helm
IMAGES_FORMAT ?= oci-archive
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X bosun.dev/pkg/version.Version=$(VERSION) -X bosun.dev/pkg/version.Revision=$(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
# Short fuzzing of the manifest decoder and validators in every `make test`,
# as a number of executions (about 20 s each here): a duration ends in a
# spurious "context deadline exceeded" now and then with Go 1.26
# (golang/go#75804, fixed in Go 1.27), a count never does.
FUZZ_VALIDATE_EXECS ?= 40000x
FUZZ_TRANSLATE_EXECS ?= 30000x

.PHONY: help
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

$(TOOLBIN)/%: $(DEVTOOLS)
	cd tools/devtools && GOWORK=off GOBIN=$(TOOLBIN) go install tool
	@touch $(TOOLBIN)/*

.PHONY: devtools
devtools: $(addprefix $(TOOLBIN)/,$(GO_TOOLS)) ## build the pinned developer tools into .bin/tools

.PHONY: gen
gen: devtools ## regenerate gen/ from proto/ (offline)
	rm -rf gen/bosun gen/openapi
	buf generate

.PHONY: lint-proto
lint-proto: devtools ## buf lint, and buf breaking against main when main exists
	buf lint
	@if git rev-parse --verify -q main >/dev/null && git cat-file -e main:buf.yaml 2>/dev/null; then \
	  echo "buf breaking --against .git#branch=main"; buf breaking --against '.git#branch=main'; \
	else echo "buf breaking: no main branch with an API yet, skipped"; fi

.PHONY: check-gen
check-gen: gen ## fail when the committed gen/ differs from a fresh `make gen`
	@if [ -n "$$(git status --porcelain -- gen)" ]; then \
	  git status --porcelain -- gen; echo "gen/ is stale: run 'make gen' and commit" >&2; exit 1; fi

.PHONY: gowork
gowork: ## rewrite go.work from the go.mod files present
	scripts/gowork.sh

.PHONY: check-gowork
check-gowork: ## fail when go.work differs from the go.mod files present
	scripts/gowork.sh --check

.PHONY: build
build: ## build every binary into bin/
	@mkdir -p $(BIN)
	@for s in $(SERVICES); do (cd services/$$s && go build -ldflags "$(LDFLAGS)" -o $(BIN)/$$s ./cmd/$$s) || exit 1; done
	cd tools && go build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/...

.PHONY: vet
vet: ## go vet every module
	@for m in $(MODULES); do (cd $$m && go vet ./...) || exit 1; done

.PHONY: test-short
test-short: ## the fast tests: unit tests of every module
	@for m in $(MODULES); do (cd $$m && go test -short -count=1 ./...) || exit 1; done

.PHONY: fuzz
fuzz: ## fuzz manifest decoding, validation and xDS translation (FUZZ_VALIDATE_EXECS, FUZZ_TRANSLATE_EXECS; a duration such as 5m works too)
	cd services/apiserver && go test -run='^$$' -fuzz=FuzzDecodeAndValidate -fuzztime=$(FUZZ_VALIDATE_EXECS) ./internal/validation/
	cd services/service-proxy && go test -run='^$$' -fuzz=FuzzTranslate -fuzztime=$(FUZZ_TRANSLATE_EXECS) ./internal/translate/

.PHONY: test
test: check-gowork lint-proto check-gen build vet devtools ## the whole suite: checks, every module's tests, fuzzing
	@for m in $(MODULES); do echo "== $$m"; (cd $$m && go test -count=1 -timeout 20m ./...) || exit 1; done
	$(MAKE) fuzz

.PHONY: images
images: ## build an OCI image per service into bin/images, no Docker (IMAGES_FORMAT=oci|oci-archive)
	cd tools && go run ./cmd/images -out $(BIN)/images -format $(IMAGES_FORMAT) -version $(VERSION)

.PHONY: helm-lint
helm-lint: devtools ## helm lint and template of every chart with default and HA values, manifests checked strictly
	cd tools && HELM=$(TOOLBIN)/helm CI=1 go test -count=1 ./internal/chartcheck/

.PHONY: conformance
conformance: ## the conformance suites: Bosun's scheduler, health-checker, service-proxy and node-agent (the node-agent's as root), and the minimal scheduler
	cd tests && go test -count=1 -timeout 10m ./conformance/... ./minimalscheduler/...

.PHONY: multinode
multinode: ## the multi-node scenarios on real containerd, nodes in network namespaces (root): node loss, partition, leader failover, apiserver and etcd faults, rollout under xDS traffic, workloads
	cd tests && go test -count=1 -v -timeout 25m ./multinode/...

.PHONY: skew
skew: ## version skew: each service from the previous release (or HEAD^) with the rest from this tree, end to end
	cd tests && go test -count=1 -v -timeout 15m ./skew/

.PHONY: bench
bench: build ## run the benchmarks and write docs/benchmarks.md (the node-agent's needs root)
	$(BIN)/bench -out docs/benchmarks.md
	cd services/node-agent && BOSUN_BENCH_OUT=$(CURDIR)/docs/benchmarks.md go test -run '^$$' -bench PodStartup -benchtime 1x ./internal/agent/

.PHONY: run
run: build ## start a local cluster with the demo in the foreground (NODES=3: three nodes in network namespaces)
	scripts/run.sh

.PHONY: clean
clean: ## remove built binaries
	rm -rf $(BIN)
