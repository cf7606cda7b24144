# Thin aliases over cargo. `make run` and `make test` are the two commands a newcomer needs.
CARGO ?= cargo

.PHONY: run token test lint fmt build clean soak soak-short bench wrk

## run: build in release mode and serve on http://localhost:6060 (reads .env)
run:
	$(CARGO) run --release --locked

## token: print an access token from the running development issuer (make token CLIENT=<id>)
CLIENT ?=
token:
	@$(CARGO) run --release --locked --quiet -- token $(CLIENT)

## test: the whole suite (unit and HTTP-level integration tests on loopback)
test:
	$(CARGO) test --locked

## soak: 60 s of wrk load on the release build while the issuer rotates keys and goes down
soak: wrk
	SOAK_SECS=$${SOAK_SECS:-60} $(CARGO) test --release --locked --test soak -- --ignored --nocapture

## soak-short: the same for 10 s (run by CI)
soak-short: wrk
	SOAK_SECS=10 $(CARGO) test --release --locked --test soak -- --ignored --nocapture

## bench: wrk load benchmark of every route on the release build; figures in target/bench/
bench: wrk
	$(CARGO) test --release --locked --test bench -- --ignored --nocapture

# wrk comes from Debian's packages; installed when missing.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
wrk:
	@command -v wrk >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq wrk; }

## lint: formatting check and clippy with warnings as errors
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings

## fmt: format the code
fmt:
	$(CARGO) fmt --all

build:
	$(CARGO) build --release --locked

clean:
	$(CARGO) clean
