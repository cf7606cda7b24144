# Thin aliases over cargo. `make run` and `make test` are the two commands a newcomer needs.
CARGO ?= cargo

.PHONY: help run token dpop-call test check lint doc fmt build clean soak soak-short bench wrk chromium \
	image image-test image-tools k8s-validate openapi-validate cluster-test cluster-test-short haproxy

## help: list the targets
help:
	@awk -F': ' '/^## / { sub(/^## /, ""); split($$0, a, ": "); printf "  %-19s %s\n", a[1], substr($$0, length(a[1]) + 3) }' $(MAKEFILE_LIST)

## run: build in release mode and serve on http://localhost:6060 (reads .env)
run:
	$(CARGO) run --release --locked

## token: print an access token from the running development issuer (make token CLIENT=<id>)
CLIENT ?=
token:
	@$(CARGO) run --release --locked --quiet -- token $(CLIENT)

## dpop-call: with make run going, a DPoP-bound token from the development issuer and a call with a fresh proof
dpop-call:
	@$(CARGO) run --release --locked --quiet -- dpop $(CLIENT)

## test: the whole suite: unit, HTTP-level on loopback, and real-browser tests (installs chromium)
test: chromium
	$(CARGO) test --locked

## soak: 60 s of wrk load on the release build while the issuer rotates keys and goes down
soak: wrk
	SOAK_SECS=$${SOAK_SECS:-60} $(CARGO) test --release --locked --test soak -- --ignored --nocapture

## soak-short: the same for 10 s (run by CI)
soak-short: wrk
	SOAK_SECS=10 $(CARGO) test --release --locked --test soak -- --ignored --nocapture

## bench: wrk load benchmark of every route against a bare actix-web baseline; figures in target/bench/
bench: wrk
	$(CARGO) build --release --locked --example bare-actix
	$(CARGO) test --release --locked --test bench -- --ignored --nocapture

# The browser tests drive Debian's chromium (or $CHROME); installed when missing.
chromium:
	@[ -n "$$CHROME" ] || command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; }

# wrk comes from Debian's packages; installed when missing.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
wrk:
	@command -v wrk >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq wrk; }

## image: the container image hello-world-api:latest (static musl binary FROM scratch), with podman
MUSL := x86_64-unknown-linux-musl
PODMAN := CONTAINERS_CONF=$(CURDIR)/deploy/containers.conf podman
image: image-tools
	CC_x86_64_unknown_linux_musl=musl-gcc CARGO_TARGET_DIR=target/image \
	  $(CARGO) build --release --locked --target $(MUSL) --bin hello-world-api
	$(PODMAN) build --tag hello-world-api:latest --file Containerfile .
	@$(PODMAN) image inspect --format 'hello-world-api:latest: {{.Size}} bytes' hello-world-api:latest

## image-test: run the image read-only, unprivileged, as uid 65532, against a local issuer
image-test: image
	$(CARGO) test --locked --test image -- --ignored --nocapture

# podman, runc and musl-gcc from Debian's packages, the musl target from rustup; when missing.
image-tools:
	@command -v podman >/dev/null 2>&1 && command -v runc >/dev/null 2>&1 && command -v musl-gcc >/dev/null 2>&1 \
	  || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq podman runc musl-tools; }
	@rustup target list --installed | grep -qx $(MUSL) || rustup target add $(MUSL)

## openapi-validate: validate /openapi.json (as the suite wrote it) as OpenAPI 3.1 (openapi-spec-validator)
openapi-validate:
	tests/openapi/validate.sh

## k8s-validate: render deploy/kubernetes and validate every object strictly (kubernetes-validate)
k8s-validate:
	deploy/validate.sh

## cluster-test: 3 replicas behind HAProxy under wrk through a rolling restart, a key rotation and a 20 s issuer outage; then the rotation 5 s after the restart
cluster-test: wrk haproxy
	CLUSTER_OUTAGE_SECS=$${CLUSTER_OUTAGE_SECS:-20} $(CARGO) test --release --locked --test cluster -- --ignored --nocapture --test-threads=1

## cluster-test-short: the same with a 5 s outage (about 80 s for both runs; run by CI)
cluster-test-short: wrk haproxy
	CLUSTER_OUTAGE_SECS=5 $(CARGO) test --release --locked --test cluster -- --ignored --nocapture --test-threads=1

# haproxy comes from Debian's packages (in /usr/sbin, outside a normal user's PATH); installed when missing.
haproxy:
	@command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq haproxy; }

## check: exactly what CI runs: formatting, clippy, the suite, the OpenAPI description, the docs, the short soak, the image, the manifests, the short cluster test
check: lint test openapi-validate doc soak-short image-test k8s-validate cluster-test-short

## doc: the API docs, with rustdoc warnings (broken links, bad code blocks) as errors
doc:
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps --workspace --locked

## lint: formatting check and clippy with warnings as errors
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings

## fmt: format the code
fmt:
	$(CARGO) fmt --all

## build: the release binary, target/release/hello-world-api
build:
	$(CARGO) build --release --locked

## clean: remove target/
clean:
	$(CARGO) clean
