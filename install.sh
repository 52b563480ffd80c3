#!/usr/bin/env bash
# Installs bake from this checkout on a fresh Debian 12 machine and runs it on an example.
#   ./install.sh
set -euo pipefail
cd "$(dirname "$0")"
if [ "$(id -u)" = 0 ]; then
  # System tools the build side needs at run time (nothing yet for --print; runc and
  # friends join this list with the solver).
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends ca-certificates git >/dev/null
fi
cargo install --path . --locked --quiet
bake_bin="${CARGO_HOME:-$HOME/.cargo}/bin/bake"
echo "installed: $("$bake_bin" --version)"
cd examples/bake/monorepo
"$bake_bin" --list=targets
"$bake_bin" --print api-amd64
