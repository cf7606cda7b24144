#!/usr/bin/env bash
# Validates the API's description as OpenAPI 3.1 with openapi-spec-validator (PyPI), the
# reference validator of the OpenAPI schemas: the document /openapi.json serves, as the test
# `openapi::the_description_is_written_to_target_for_the_openapi_validator` wrote it to
# target/openapi.json (that test is run first when the file is missing).
#
# The validator is installed on first use into a virtual environment under
# target/openapi-tools (OPENAPI_TOOLS to move it), pinned to OPENAPI_SPEC_VALIDATOR_VERSION.
# Exits non-zero when the document is not valid OpenAPI 3.1.
set -euo pipefail
cd "$(dirname "$0")/../.."

OPENAPI_SPEC_VALIDATOR_VERSION=0.9.0
TARGET=${CARGO_TARGET_DIR:-target}
TOOLS=${OPENAPI_TOOLS:-$TARGET/openapi-tools}
DOCUMENT=${1:-$TARGET/openapi.json}

if [ ! -f "$DOCUMENT" ]; then
  echo "tests/openapi/validate.sh: $DOCUMENT missing: writing it with the API's test"
  cargo test --locked --test api -- --exact \
    openapi::the_description_is_written_to_target_for_the_openapi_validator
fi

venv=$TOOLS/venv
if [ "$(cat "$venv/.openapi-spec-validator" 2>/dev/null)" != "$OPENAPI_SPEC_VALIDATOR_VERSION" ]; then
  echo "installing into $venv: openapi-spec-validator $OPENAPI_SPEC_VALIDATOR_VERSION (PyPI)"
  rm -rf "$venv"
  mkdir -p "$TOOLS"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check \
    "openapi-spec-validator==$OPENAPI_SPEC_VALIDATOR_VERSION"
  echo "$OPENAPI_SPEC_VALIDATOR_VERSION" >"$venv/.openapi-spec-validator"
fi

# --schema 3.1: validate against OpenAPI 3.1 itself, not whatever version the file claims.
"$venv/bin/openapi-spec-validator" --schema 3.1 --validation-errors all "$DOCUMENT"
