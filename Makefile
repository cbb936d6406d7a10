# quai's everyday commands. `make run` starts the daemon on the defaults;
# `make test` runs every test, the Docker, git and Vault ones included.
export PATH := /usr/local/go/bin:$(PATH)
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: build run test bench vet lint image clean
STATICCHECK := $(or $(QUAI_CACHE),$(HOME)/.cache/quai)/bin/staticcheck

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/quai ./cmd/quai

run: build
	./bin/quai serve

# Packages that drive Docker or Vault run one at a time (-p 1): the machine
# has two cores, and parallel packages would measure each other. Benchmarks
# run once each, as a smoke test; real numbers come from `make bench`.
test:
	$(GO) vet ./...
	$(GO) test -p 1 -count=1 -timeout 30m ./...
	$(GO) test -p 1 -count=1 -run '^$$' -bench . -benchtime 1x ./...

bench:
	$(GO) test -p 1 -count=1 -run '^$$' -bench . -benchmem ./...

vet:
	$(GO) vet ./...

# lint fails on unformatted files, vet findings and staticcheck findings.
lint: vet
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "run gofmt -w on the files above"; exit 1; }
	@test -x $(STATICCHECK) || GOBIN=$(dir $(STATICCHECK)) $(GO) install honnef.co/go/tools/cmd/staticcheck@v0.8.2
	$(STATICCHECK) ./...

# image builds quai's own container image; BASE must have git or apt.
image:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/quai-linux-amd64 ./cmd/quai
	DOCKER_BUILDKIT=0 docker build $(if $(BASE),--build-arg BASE=$(BASE)) -t quai:$(VERSION) .

clean:
	rm -rf bin
