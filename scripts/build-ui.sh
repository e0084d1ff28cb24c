#!/usr/bin/env bash
# Builds the browser dashboard (orch-ui-leptos) into orch-ui-leptos/dist, which `orch serve` serves at /.
# Idempotent: adds the wasm32 target and installs wasm-bindgen-cli (the exact version the crate pins)
# when missing; runs wasm-opt when a recent enough binaryen is installed (see below).
#
#   scripts/build-ui.sh
#
# Environment: CARGO_TARGET_DIR (default: $HOME/.cache/orch-target, as scripts/test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/orch-target}"
crate=orch-ui-leptos
lib=orch_ui_leptos
dist="$crate/dist"
step() { printf '==> %s\n' "$*" >&2; }

# The wasm-bindgen version the crate pins (`wasm-bindgen = "=X.Y.Z"`): the CLI must be exactly it.
want=$(sed -n 's/^wasm-bindgen = "=\([0-9.]*\)".*/\1/p' "$crate/Cargo.toml")
if [ -z "$want" ]; then
  echo "cannot read the pinned wasm-bindgen version from $crate/Cargo.toml" >&2
  exit 1
fi

if command -v rustup >/dev/null 2>&1 && ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  step "installing the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$want" ]; then
  step "installing wasm-bindgen-cli $want (found: ${have:-none}; takes a few minutes once)"
  # Not --locked: the CLI's own lockfile names crate versions the registry may not have (measured).
  cargo install wasm-bindgen-cli --version "$want"
fi

# `--cfg erase_components`: Leptos erases the types of components' and elements' children, so the views
# are not monomorphized into deeply nested types: 439 → 397 KiB of gzipped wasm (measured 2026-12-03).
# For the wasm target only (host builds and build scripts keep their flags and their cache).
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="${CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS:-} --cfg erase_components"
step "cargo build --profile wasm-release --target wasm32-unknown-unknown -p $crate"
cargo build --profile wasm-release --target wasm32-unknown-unknown -p "$crate"

wasm="$CARGO_TARGET_DIR/wasm32-unknown-unknown/wasm-release/$lib.wasm"
tmp=$(mktemp -d "$crate/.dist.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
step "wasm-bindgen --target web"
# Without the name and producers sections: a third of the module, which browsers do not need.
wasm-bindgen --target web --no-typescript --remove-name-section --remove-producers-section --out-dir "$tmp/pkg" "$wasm"

# wasm-opt, when a binaryen that handles wasm-bindgen's two tables is installed: binaryen 108 (Debian 12)
# writes the export of the externref table as the function table's, and the page then fails to start
# ("WebAssembly.Table.set(): Argument 1 is invalid for table"; measured). The optimized module is kept
# only when it is smaller gzipped (after opt-level "z" it often is not).
opt_version=$(wasm-opt --version 2>/dev/null | awk '{print $3}' || true)
if [ -n "$opt_version" ] && [ "$opt_version" -ge 117 ] 2>/dev/null; then
  step "wasm-opt -Oz (binaryen $opt_version)"
  # rustc enables these features for wasm32-unknown-unknown; binaryen needs them named.
  wasm-opt -Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-reference-types \
    --enable-multivalue --enable-sign-ext --enable-mutable-globals \
    "$tmp/pkg/${lib}_bg.wasm" -o "$tmp/opt.wasm"
  if [ "$(gzip -9 -c "$tmp/opt.wasm" | wc -c)" -lt "$(gzip -9 -c "$tmp/pkg/${lib}_bg.wasm" | wc -c)" ]; then
    mv "$tmp/opt.wasm" "$tmp/pkg/${lib}_bg.wasm"
  else
    rm -f "$tmp/opt.wasm"
  fi
elif [ -n "$opt_version" ]; then
  echo "note: wasm-opt (binaryen $opt_version) is skipped: versions before 117 break wasm-bindgen's externref table" >&2
fi

cp "$crate/web/index.html" "$crate/web/style.css" "$tmp/"
# Precompressed copies, which `orch serve` sends to browsers that accept them: gzip always, brotli
# when the brotli command is installed (Debian: `apt-get install brotli`).
for f in "$tmp/index.html" "$tmp/style.css" "$tmp/pkg/$lib.js" "$tmp/pkg/${lib}_bg.wasm"; do
  gzip -9 -n -k -f "$f"
  if command -v brotli >/dev/null 2>&1; then
    brotli -q 11 -k -f "$f"
  fi
done

# Swap the new build in whole, so a running server never serves half of one.
rm -rf "$dist.old"
[ -d "$dist" ] && mv "$dist" "$dist.old"
mv "$tmp" "$dist"
chmod 755 "$dist"
rm -rf "$dist.old"
trap - EXIT

raw=$(stat -c %s "$dist/pkg/${lib}_bg.wasm")
gz=$(stat -c %s "$dist/pkg/${lib}_bg.wasm.gz")
br=""
[ -f "$dist/pkg/${lib}_bg.wasm.br" ] && br=", brotli $(($(stat -c %s "$dist/pkg/${lib}_bg.wasm.br") / 1024)) KiB"
# Exact gzip bytes too: the goal is < 400,000 bytes of gzipped wasm.
echo "built $dist: wasm $((raw / 1024)) KiB, gzip $((gz / 1024)) KiB ($gz bytes)$br"
