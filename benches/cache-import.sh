#!/usr/bin/env bash
# Benchmark (a script, not a timed test): the monorepo example built cold on a fresh state
# root, cold again while exporting a local cache with mode=max, and then a copy of the project
# in another directory on a fresh root that imports that cache.
#   benches/cache-import.sh                  # uses target/release/bake
#   BAKE=target/debug/bake benches/cache-import.sh
# Needs root, runc and busybox-static (the example builds its OS image from busybox).
set -euo pipefail
bake=$(realpath "${BAKE:-target/release/bake}")
example=$(realpath examples/bake/monorepo)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$example" "$work/a"
cp -r "$example" "$work/b"
cp -r "$example" "$work/c"
# The OS image reads busybox from /bin, outside the project.
allow=(--allow fs.read=/bin)
seconds() {
    local start end
    start=$(date +%s.%N)
    "$@" >"$work/log" 2>&1 || { cat "$work/log" >&2; echo "failed: $*" >&2; return 1; }
    end=$(date +%s.%N)
    echo "$end - $start" | bc
}
cold=$(cd "$work/a" && seconds "$bake" --root "$work/root-a" --progress=plain "${allow[@]}")
export=$(cd "$work/b" && seconds "$bake" --root "$work/root-b" --progress=plain "${allow[@]}" \
    --set "*.cache-to=type=local,dest=$work/cache,mode=max")
import=$(cd "$work/c" && seconds "$bake" --root "$work/root-c" --progress=plain "${allow[@]}" \
    --set "*.cache-from=type=local,src=$work/cache")
echo "cold build:                      ${cold} s"
echo "cold build + cache export (max): ${export} s"
echo "fresh root + cache import:       ${import} s"
echo "cache size: $(du -sh "$work/cache" | cut -f1)"

# The same pair with no outputs (`type=cacheonly`): what the import itself costs, apart from
# writing the example's archives and directories (which a fresh root writes in full either way).
cold_only=$(cd "$work/a" && rm -rf out && seconds "$bake" --root "$work/root-d" --progress=plain "${allow[@]}" \
    --set "*.output=type=cacheonly")
import_only=$(cd "$work/c" && rm -rf out && seconds "$bake" --root "$work/root-e" --progress=plain "${allow[@]}" \
    --set "*.output=type=cacheonly" --set "*.cache-from=type=local,src=$work/cache")
echo "cold build, no outputs:          ${cold_only} s"
echo "fresh root + import, no outputs: ${import_only} s"
