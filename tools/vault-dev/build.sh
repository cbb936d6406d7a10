#!/usr/bin/env bash
# Builds the Vault dev server used by the integration tests, once per machine.
# Vault 1.19 is BUSL-1.1: the binary is a test fixture and is never shipped.
# Prints the binary's path on stdout.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${QUAI_CACHE:-$HOME/.cache/quai}
bin=$cache/vault-1.19.0/vault
if [[ ! -x $bin ]]; then
  mkdir -p "$(dirname "$bin")"
  echo "building Vault 1.19.0 into $bin (about 12 minutes on a cold machine)" >&2
  (cd "$here" && go build -p 2 -trimpath -ldflags="-s -w" -o "$bin.tmp" . && mv "$bin.tmp" "$bin")
fi
echo "$bin"
