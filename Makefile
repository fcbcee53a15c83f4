# backflow: `make demo` runs the main job, `make test` runs the tests.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := build

export GONOSUMDB ?= github.com/argoproj
export BACKFLOW_CACHE ?= $(HOME)/.cache/backflow
export CGO_ENABLED ?= 0

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
BIN := bin/backflow
CRD_DIR := charts/backflow/crds
GENERATED = api/v1alpha1/zz_generated.deepcopy.go $(CRD_DIR)/*.yaml workflowtemplates/*.yaml health/argocd-cm.yaml health/backflow.dev/Restore/health.lua
TOOLS := test/tools/build.sh

.PHONY: build
build: ## Build the static backflow binary into bin/.
	go build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o $(BIN) ./cmd/backflow

# The image reference; test/cluster/images.sh is the one place that names it.
IMAGE ?= $(shell test/cluster/images.sh ref backflow)

.PHONY: image
image: build ## Build the backflow image (the static binary, non-root) into bin/backflow-image.tar, a docker archive.
	go run ./cmd/build-image --tag $(IMAGE) --out bin/backflow-image.tar --user 65532 --entrypoint backflow \
		--file usr/local/bin/backflow=$(BIN) --file etc/ssl/certs/ca-certificates.crt=/etc/ssl/certs/ca-certificates.crt

.PHONY: generate
generate: ## Regenerate deep-copy code and the CRDs from the API's markers.
	go tool controller-gen object paths=./api/...
	go tool controller-gen crd:crdVersions=v1 paths=./api/... output:crd:dir=$(CRD_DIR)
	go run ./cmd/backflow workflowtemplates --out-dir workflowtemplates
	cp health/backflow.dev/Backup/health.lua health/backflow.dev/Restore/health.lua
	go run ./cmd/backflow argocd-config > health/argocd-cm.yaml

# Regenerates and fails when anything generated changed, so stale generated
# files never land.
.PHONY: check-generated
check-generated:
	@before=$$(cat $(GENERATED) | sha256sum); \
	$(MAKE) --no-print-directory generate >/dev/null; \
	after=$$(cat $(GENERATED) | sha256sum); \
	if [ "$$before" != "$$after" ]; then \
		echo "generated files were stale and have been regenerated: review and commit them" >&2; exit 1; \
	fi

.PHONY: deps
deps: ## Install the Debian packages the tests need (apt-get, when missing).
	test/tools/install-deps.sh

.PHONY: check-pins
check-pins: ## Ask the Go module proxy (over HTTP, not the module cache) whether it still serves every pinned module version; takes seconds.
	@test/tools/check-pins.sh

.PHONY: test-assets
test-assets: ## Build what the tests run (kube-apiserver, etcd, kubectl, Argo's controller, KWOK, MinIO, FerretDB, helm, promtool) into the cache, once.
	@$(TOOLS) kube-apiserver etcd kubectl workflow-controller kwok minio helm promtool ferretdb >/dev/null

.PHONY: test
test: deps check-generated test-assets ## Run the tests (envtest against a real kube-apiserver + etcd).
	KUBEBUILDER_ASSETS=$$(dirname $$($(TOOLS) kube-apiserver)) BACKFLOW_MINIO=$$($(TOOLS) minio) go test -count=1 ./...

.PHONY: lint
lint: ## go vet, gofmt, staticcheck and golangci-lint's goconst and dupl (.golangci.yml; the e2e and chaos suites' build tags included); no tracked binaries or files over 1 MiB.
	@test/tools/check-tracked.sh
	go vet -tags e2e,chaos ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	go tool staticcheck -tags e2e,chaos ./...
	go tool golangci-lint run ./...

CLUSTER := test/cluster/cluster.sh
E2E_NAMESPACES := e2e-postgresql e2e-failure e2e-files e2e-schedule e2e-mongodb wiki e2e-alice e2e-mallory e2e-progress e2e-notify

.PHONY: up
up: deps build ## Bring the local single-node cluster up (or reuse it): Kubernetes, Argo, MinIO, PostgreSQL, MariaDB.
	@$(CLUSTER) up

.PHONY: down
down: ## Stop the local cluster and remove what it left (processes, mounts, bridge, iptables chains).
	@$(CLUSTER) down

.PHONY: e2e
e2e: up ## End-to-end tests on the local cluster, backflow installed by its Helm chart.
	test/cluster/install-backflow.sh $(E2E_NAMESPACES)
	go test -tags e2e -count=1 -timeout 20m ./test/e2e

CHAOS_NAMESPACES := chaos-controller chaos-argo chaos-minio chaos-database chaos-dump-exit chaos-pod-deleted chaos-fifty chaos-schedule chaos-corrupt

# The suite runs as a compiled test binary so that its summary (one line per
# scenario, then the totals) is printed whether it passes or fails, without
# -v's noise; the failures' own messages come before it.
.PHONY: chaos
chaos: up ## The fault suite on the local cluster (controller, Argo, MinIO and databases killed mid-run, failing dumps, corrupted objects).
	test/cluster/install-backflow.sh $(CHAOS_NAMESPACES)
	go test -tags chaos -c -o bin/chaos.test ./test/chaos
	bin/chaos.test -test.count=1 -test.timeout 25m

.PHONY: help
help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

.PHONY: bench-stages
bench-stages: deps build ## Benchmark dump/restore against the gzip|age|mc shell pipeline and zstd alone (1 GiB and 8 GiB inputs), restore against mc|age|zstd|sha256sum, pg_dump and mariadb-dump through backflow against the tool alone, and the MongoDB engine against FerretDB.
	BACKFLOW_BIN=$(CURDIR)/$(BIN) BACKFLOW_MC=$$($(TOOLS) mc) BACKFLOW_MINIO=$$($(TOOLS) minio) go run ./test/bench/stages

.PHONY: bench-e2e
bench-e2e: up ## Time Backups of a 10 MB and a 1 GB PostgreSQL database on the local cluster against a one-pod pg_dump|gzip|age|mc pipeline, then 1, 10 and 50 at once.
	test/cluster/install-backflow.sh bench-e2e
	$(CLUSTER) import shell
	BACKFLOW_BENCH_SHELL_IMAGE=$$(test/cluster/images.sh ref shell) go run ./test/bench/e2e

.PHONY: demo
demo: deps build ## The main job: a local cluster; a PostgreSQL database backed up by an Argo Workflow into MinIO and restored.
	test/demo/demo.sh

.PHONY: bench-controller
bench-controller: test-assets ## Measure how fast a Workflow's status reaches its Backup (p50, p95), against envtest + Argo + KWOK.
	KUBEBUILDER_ASSETS=$$(dirname $$($(TOOLS) kube-apiserver)) BACKFLOW_MINIO=$$($(TOOLS) minio) go test -run '^$$' -bench BenchmarkStatusLatency -benchtime 20x ./controller/

.PHONY: bench-resync
bench-resync: build test-assets ## Time the controller's full resync of 1,000 Backups and 300 BackupSchedules, and its peak RSS.
	BACKFLOW_BIN=$(CURDIR)/$(BIN) KUBEBUILDER_ASSETS=$$(dirname $$($(TOOLS) kube-apiserver)) go run ./test/bench/resync
