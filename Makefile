# dyndns: self-hosted DynDNS for Plesk.
#
#   make up      build, then serve the handler on 127.0.0.1:3000 with a local
#                config (on Spin when there is one: $SPIN, ../shared/tools/spin,
#                spin on PATH; else wasmtime serve) and run the applier in
#                dry-run mode beside it
#   make demo    the same, but the applier really applies to an emulated Plesk
#   make test    everything CI runs: lints, unit, integration, end-to-end tests
#   make bench   benchmarks on wasmtime serve and Spin; writes BENCHMARKS.md
#   make package the Debian and RPM packages, in target/package/
#   make fuzz    coverage-guided fuzzing of the parsers, FUZZ_SECONDS (60) per
#                target; see FUZZING.md
#
# Tools are installed when missing: the wasm32-wasip2 target, wasmtime
# $(WASMTIME_VERSION) (the Wasmtime inside Spin 4.0.2), and for the client
# tests the Debian packages ddclient, inadyn, bind9, pebble, lego and certbot plus
# Python's aiosmtpd, for the packages dpkg-dev, rpm, help2man (and lintian,
# systemd for their tests).

WASMTIME_VERSION := 44.0.0
CARGO ?= cargo
CARGO_BIN := $(HOME)/.cargo/bin
export PATH := $(CARGO_BIN):$(PATH)

WASM := target/wasm32-wasip2/release/dyndns_handler.wasm
APPLIER := target/release/dyndns-applier
EMULATOR := target/release/plesk
LISTEN ?= 127.0.0.1:3000

.PHONY: all tools test-deps build lint test up demo bench package fuzz clean

all: build

## tools: the wasm and static-linux targets and the pinned wasmtime CLI (skipped when present)
tools:
	@for t in wasm32-wasip2 x86_64-unknown-linux-musl; do \
	    rustup target list --installed | grep -qx $$t || rustup target add $$t; done
	@if wasmtime --version 2>/dev/null | grep -q " $(WASMTIME_VERSION)"; then \
	    echo "wasmtime $(WASMTIME_VERSION) present"; \
	else \
	    echo "installing wasmtime-cli $(WASMTIME_VERSION) (takes ~15 minutes once)"; \
	    $(CARGO) install wasmtime-cli --locked --version $(WASMTIME_VERSION); \
	fi

## test-deps: real update clients, an SMTP server, BIND, pebble and lego for the end-to-end tests
test-deps:
	@./scripts/test-deps.sh

build: tools
	$(CARGO) build --release -p dyndns-handler --target wasm32-wasip2
	$(CARGO) build --release -p dyndns-applier -p dyndns-tests --bins

lint: tools
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p dyndns-handler -p hello-component -p durable-component -p fileops-component --target wasm32-wasip2 -- -D warnings
	$(CARGO) fmt --manifest-path fuzz/Cargo.toml -- --check
	$(CARGO) clippy --manifest-path fuzz/Cargo.toml --target-dir target --no-default-features --all-targets -- -D warnings

test: tools test-deps lint
	$(CARGO) build --release -p dyndns-handler --target wasm32-wasip2
	$(CARGO) test --workspace --all-targets

up: build
	@./scripts/local-setup.sh
	@./scripts/serve-local.sh --dry-run

demo: build
	@./scripts/local-setup.sh
	@./scripts/serve-local.sh

bench: build
	@./scripts/bench.sh

## package: dyndns_<version>_amd64.deb and dyndns-<version>.x86_64.rpm
## (the applier linked statically with musl, so one binary fits every distribution)
package:
	@for t in wasm32-wasip2 x86_64-unknown-linux-musl; do \
	    rustup target list --installed | grep -qx $$t || rustup target add $$t; done
	@./scripts/test-deps.sh package
	$(CARGO) build --release -p dyndns-handler --target wasm32-wasip2
	$(CARGO) build --release -p dyndns-applier --target x86_64-unknown-linux-musl
	@./scripts/package.sh

## fuzz: every fuzz target in turn (nightly + cargo-fuzz, installed when missing)
fuzz:
	@./scripts/fuzz.sh

clean:
	$(CARGO) clean
	rm -rf var
