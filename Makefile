# keyrotator — every task a person or CI runs. `make help` lists them.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# Go modules of the workspace: `go test ./...` does not work at a go.work root.
MODULES := cli functions iampolicy infra local test
# Their packages, for one `go test` at the root (workspace mode), so packages
# of different modules run side by side; test/ first, as the slowest
# packages (test/e2e) start first. -p and -parallel stay at their default,
# the core count: on the 2-core machine 4 and 4 were no faster and made
# tests that time real seconds fail. test/e2e alone runs three of its
# tests side by side (its TestMain): they mostly wait.
PACKAGES := ./test/... ./local/... ./infra/... ./functions/... ./cli/... ./iampolicy/...
# -vet=off: make lint runs go vet over every package (beside the tests).
GO_TEST_FLAGS ?= -count=1 -vet=off -timeout 20m
PORT ?= 4566
# Real time a Step Functions Wait stands for: 1e-5 makes a 7-day wait last 6 s.
WAIT_SCALE ?= 1e-5
# make sandbox: the member accounts it holds, each with the member stack (the golden config names 222233334444)
MEMBER_ACCOUNTS ?= 222233334444

NODE_STAMP := node_modules/.package-lock.json
# The CDK CLI and the jsii runtime on the pinned Node 22.
NODE_BIN := $(CURDIR)/node_modules/.bin
export JSII_NODE := $(NODE_BIN)/node
CDK := PATH="$(NODE_BIN):$$PATH" $(NODE_BIN)/cdk
# The rotations config: yours, or the documented example.
CONFIG ?= $(if $(wildcard keyrotator.config.json),keyrotator.config.json,keyrotator.config.example.json)
BIN := bin

# One Lambda per task of functions/tasks, each in functions/cmd/<task>
# (test/contract's TestEveryTaskHasItsCommand keeps the two equal).
TASKS := $(notdir $(wildcard functions/cmd/*))
LAMBDA_ARCH ?= arm64
# How every Lambda is built (local/pipeline's GoBuildFlags, which the
# sandbox's deploy and the benchmarks use, must match: test/contract checks).
# lambda.norpc: no net/rpc (provided.al2023 speaks the Runtime API only).
# nethttpomithttp2: net/http without its bundled HTTP/2 (0.4 MB;
# $(go env GOROOT)/src/net/http/omithttp2.go), which no call of a Lambda
# uses: the Runtime API and every endpoint they call (AWS, Auth0, SORACOM)
# speak HTTP/1.1. -gcflags github.com/aws/...=-l: the SDK's generated code
# not inlined (0.2 MB; its calls wait on the network); and keyrotator's own
# (0.13 MB of Validate once it linked STS for member accounts, issue 15:
# its work waits on the network too). With -s -w, every bootstrap stays
# within issue 12's 8 MB (README, Benchmarks).
GO_LAMBDA_FLAGS := -trimpath -tags lambda.norpc,nethttpomithttp2 -gcflags "github.com/aws/...=-l" -gcflags "github.com/keyrotator/...=-l" -ldflags "-s -w"
FUNCTION_SRC := $(shell find functions -name '*.go' -not -name '*_test.go' 2>/dev/null) functions/go.mod functions/rotation/input.schema.json
LOCAL_SRC := $(shell find local -name '*.go' -o -name '*.mjs' 2>/dev/null) local/go.mod
CLI_SRC := $(shell find cli -name '*.go' -not -name '*_test.go' 2>/dev/null) cli/go.mod

.PHONY: help
help: ## list the targets
	@grep -E '^[a-zA-Z_%/-]+:.*?## ' $(MAKEFILE_LIST) | sort | awk -F':.*?## ' '{printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

.PHONY: deps
deps: $(NODE_STAMP) ## install the pinned Node tools (Node 22, aws-local-stepfunctions, asl-validator)
	@for m in $(MODULES); do (cd $$m && go mod download); done

# What the demo and the sandbox run: this machine's architecture only (the
# linux/$(LAMBDA_ARCH) build is for synth and deploy).
HOST_LAMBDAS := $(TASKS:%=$(BIN)/lambda/%/bootstrap)
HOST_BINS := $(BIN)/keyrotator $(BIN)/keyrotator-sandbox $(BIN)/keyrotator-demo $(HOST_LAMBDAS)

.PHONY: build
build: $(HOST_BINS) $(TASKS:%=dist/%/bootstrap) ## build every binary: the sandbox's and the deployable (dist/, linux/$(LAMBDA_ARCH))

# The demo follows its run with the CLI's watch (cli/watch).
$(BIN)/keyrotator-%: $(LOCAL_SRC) $(CLI_SRC) $(FUNCTION_SRC)
	go build -trimpath -o $@ ./local/cmd/keyrotator-$*

# The operator CLI (docs/cli.md); it validates input with functions/rotation.
$(BIN)/keyrotator: $(CLI_SRC) $(FUNCTION_SRC)
	go build -trimpath -o $@ ./cli/cmd/keyrotator

# What the sandbox runs: this machine's architecture. One go build of every
# task (its packages compiled once, the links side by side), as
# local/pipeline's Build does, rather than one go build per task: with 15
# tasks that was a third of a warm `make demo`.
LAMBDA_STAMP := $(BIN)/lambda/.built
$(LAMBDA_STAMP): $(FUNCTION_SRC)
	@rm -rf $(BIN)/lambda/.bin
	cd functions && CGO_ENABLED=0 go build $(GO_LAMBDA_FLAGS) -o ../$(BIN)/lambda/.bin/ ./cmd/...
	@for t in $(TASKS); do mkdir -p $(BIN)/lambda/$$t && mv $(BIN)/lambda/.bin/$$t $(BIN)/lambda/$$t/bootstrap; done
	@rm -rf $(BIN)/lambda/.bin && touch $@
$(HOST_LAMBDAS): $(LAMBDA_STAMP)

# What gets deployed: provided.al2023 on $(LAMBDA_ARCH).
dist/%/bootstrap: $(FUNCTION_SRC)
	cd functions && CGO_ENABLED=0 GOOS=linux GOARCH=$(LAMBDA_ARCH) go build $(GO_LAMBDA_FLAGS) -o ../$@ ./cmd/$*

.PHONY: demo
demo: ## one rotation end to end on the sandbox, waits shortened, with a report
	@$(MAKE) --no-print-directory -j3 $(NODE_STAMP) $(BIN)/keyrotator-demo $(LAMBDA_STAMP) # npm, the demo and the Lambdas side by side
	$(BIN)/keyrotator-demo --dist $(BIN)/lambda --template infra/testdata/template.golden.json

.PHONY: sandbox
sandbox: ## the local AWS with keyrotator deployed, on 127.0.0.1:4566 or PORT= (prints the export lines a shell needs)
	@$(MAKE) --no-print-directory -j3 $(NODE_STAMP) $(BIN)/keyrotator-sandbox $(LAMBDA_STAMP)
	$(BIN)/keyrotator-sandbox --port $(PORT) --wait-scale $(WAIT_SCALE) --deploy $(BIN)/lambda --template infra/testdata/template.golden.json $(if $(MEMBER_ACCOUNTS),--member-accounts $(MEMBER_ACCOUNTS))

.PHONY: synth
synth: deps $(TASKS:%=dist/%/bootstrap) ## synthesize the CloudFormation template (offline) into cdk.out, cdk-nag applied
	$(CDK) synth --no-notices -q -c configFile=$(CONFIG)
	@echo "cdk.out/KeyRotator.template.json (config: $(CONFIG); cdk-nag report: cdk.out/AwsSolutions-KeyRotator-NagReport.csv)"

.PHONY: deploy
deploy: deps $(TASKS:%=dist/%/bootstrap) ## cdk deploy with the rotations config (AWS credentials in the environment)
	$(CDK) deploy KeyRotator --no-notices -c configFile=$(CONFIG) --require-approval broadening

.PHONY: diagram
diagram: ## draw statemachine/rotation.asl.json to docs/statemachine.svg (Graphviz: apt-get install graphviz)
	@command -v dot >/dev/null || { echo "make diagram needs Graphviz's dot: apt-get install graphviz"; exit 1; }
	go run ./local/cmd/keyrotator-diagram < statemachine/rotation.asl.json | dot -Tsvg -o docs/statemachine.svg

.PHONY: record
record: deps build ## record `keyrotator watch` following a demo run in tmux, into docs/keyrotator-watch.txt
	scripts/record-watch.sh docs/keyrotator-watch.txt

.PHONY: vet
vet: ## go vet every module
	@for m in $(MODULES); do (cd $$m && go vet ./...); done

# The linters, pinned in tools/go.mod (a module of its own, outside go.work,
# so their dependencies never reach keyrotator's).
$(BIN)/golangci-lint $(BIN)/staticcheck: tools/go.mod tools/go.sum
	cd tools && GOWORK=off go build -o ../$(BIN)/golangci-lint github.com/golangci/golangci-lint/v2/cmd/golangci-lint
	cd tools && GOWORK=off go build -o ../$(BIN)/staticcheck honnef.co/go/tools/cmd/staticcheck

.PHONY: lint
lint: $(BIN)/golangci-lint $(BIN)/staticcheck ## gofmt -l, go vet, staticcheck and golangci-lint (.golangci.yml) over every module
	@out=$$(gofmt -l $(MODULES) tools); if [ -n "$$out" ]; then echo "gofmt -l finds unformatted files:"; echo "$$out"; exit 1; fi
	@for m in $(MODULES); do (cd $$m && go vet ./... && ../$(BIN)/staticcheck ./... && ../$(BIN)/golangci-lint run --allow-parallel-runners --config ../.golangci.yml ./...) || exit 1; done

# make lint runs beside the tests, its output kept in $(LINT_LOG) and
# printed once the tests end; the target fails if either fails.
LINT_LOG := $(BIN)/lint.log
# Through a variable, so `make -n test` prints the line instead of running it.
LINT_IN_BACKGROUND = $(MAKE) --no-print-directory lint > $(LINT_LOG) 2>&1

.PHONY: test
test: deps ## run every test (unit, sandbox, SDK/CLI/boto3 clients, end to end) and make lint beside them
	@mkdir -p $(BIN)
	@$(LINT_IN_BACKGROUND) & lint=$$!; \
	go test $(GO_TEST_FLAGS) $(PACKAGES) && tested=0 || tested=$$?; \
	echo "--- make lint (run beside the tests):"; \
	wait $$lint && linted=0 || linted=$$?; cat $(LINT_LOG); \
	if [ $$tested -ne 0 ]; then echo "make test: the tests failed"; fi; \
	if [ $$linted -ne 0 ]; then echo "make test: make lint failed (above)"; fi; \
	[ $$tested -eq 0 ] && [ $$linted -eq 0 ]

.PHONY: bench
bench: deps ## benchmarks: sandbox throughput, Lambda invoke and cold starts (each task beside a Go+SDK reference), one rotation's cost, a fleet of 1,000 rotations started by the sweep against AWS's rate limits, a 250-group SORACOM repoint
	cd local && go test -run '^$$' -bench . -benchmem -cpu 1 -benchtime 2s ./...
	cd test && go test -run '^$$' -bench 'Rotation|ColdStart' -benchtime 10x ./e2e/
	cd test && go test -run '^$$' -bench 'ColdStart' -benchtime 40x ./coldstart/
	cd test && go test -run '^$$' -bench 'Fleet' -benchtime 1x -timeout 40m ./e2e/
	cd functions && go test -run '^$$' -bench . -benchtime 20x ./targets/soracom/

.PHONY: faults
faults: deps $(HOST_BINS) ## the whole fault matrix (a three-target rotation once per call keyrotator makes: failing before, answer lost after; per Lambda: crash after its work; invariants checked after each) and every role statement removed in turn under IAM enforcement (make test runs a fixed sample of each)
	cd test && go test -count=1 -v -timeout 90m -run '^TestFaultMatrix$$' ./faults/ -args -faults.all
	cd test && go test -count=1 -v -timeout 30m -run '^TestRemovingAnyGrantIsDenied$$' ./e2e/ -args -mutations.all

.PHONY: soak
soak: ## 15 minutes of the sandbox with Auth0 tenants mailing and SORACOM groups pushing: fails if open FDs, RSS or Go heap grow (not in CI)
	cd test && go test -tags soak -run '^TestSoak$$' -count=1 -v -timeout 30m ./soak/

.PHONY: fmt
fmt: ## gofmt every module
	gofmt -w $(MODULES)

.PHONY: clean
clean: ## remove build output
	rm -rf $(BIN) dist cdk.out
