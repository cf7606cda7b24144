# Thin aliases over cargo. `make run` and `make test` are the two commands a newcomer needs.
CARGO ?= cargo

.PHONY: run token test lint fmt build clean

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

## lint: formatting check and clippy with warnings as errors
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

## fmt: format the code
fmt:
	$(CARGO) fmt --all

build:
	$(CARGO) build --release --locked

clean:
	$(CARGO) clean
