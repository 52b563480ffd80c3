#!/usr/bin/env bash
# Installs bake from this checkout on a fresh Debian 12 machine, with what building needs
# (runc runs RUN steps, busybox-static is the example's OS image), then builds the monorepo
# example twice: once for real, once all CACHED.
#   ./install.sh
set -euo pipefail
cd "$(dirname "$0")"
if [ "$(id -u)" != 0 ]; then
  echo "install.sh: run as root (building runs containers with runc and mounts overlayfs)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends ca-certificates git runc busybox-static >/dev/null
cargo install --path . --locked --quiet
bake_bin="${CARGO_HOME:-$HOME/.cargo}/bin/bake"
echo "installed: $("$bake_bin" --version)"

example="$(mktemp -d)/monorepo"
cp -r examples/bake/monorepo "$example"
cd "$example"
echo
echo "== bake --list=targets (in $example)"
"$bake_bin" --list=targets
echo
echo "== bake: builds the OS image from busybox-static (read from /bin: --allow fs.read=/bin), the shared base, and seven services"
"$bake_bin" --progress=plain --allow fs.read=/bin
echo
echo "== the images and trees went where each target's output says:"
ls -l "$example/out"
echo
echo "== bake again: nothing changed, so every step is CACHED"
"$bake_bin" --progress=plain --allow fs.read=/bin 2>&1 | grep -c CACHED | xargs -I{} echo "{} steps CACHED"
