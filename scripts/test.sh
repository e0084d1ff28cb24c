#!/usr/bin/env bash
# Runs every check and test of the workspace. Installs what a fresh machine lacks, idempotently.
#
#   scripts/test.sh            # all checks and tests
#   scripts/test.sh --quick    # tests only (no fmt/clippy/wasm)
#
# Environment: CARGO_TARGET_DIR (default: $HOME/.cache/orch-target, reused between runs).
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
[ "${1:-}" = "--quick" ] && quick=1

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/orch-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
mkdir -p "$CARGO_TARGET_DIR"

step() { printf '\n==> %s\n' "$*"; }

# ---- what a fresh machine lacks ----
if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is not installed: install Rust with rustup (https://rustup.rs) first" >&2
  exit 1
fi
if command -v rustup >/dev/null 2>&1; then
  if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    step "installing the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi
  for comp in rustfmt clippy; do
    if ! rustup component list --installed 2>/dev/null | grep -q "^$comp"; then
      step "installing $comp"
      rustup component add "$comp"
    fi
  done
fi

# PostgreSQL: its tests skip with a note when no server listens on 127.0.0.1:5432, but fail under CI=true.
# Under CI, a server that is installed but stopped is started (idempotent).
pg_up() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }
if [ "${CI:-}" = "true" ] && ! pg_up && command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  step "starting the local PostgreSQL server"
  for v in /etc/postgresql/*; do pg_ctlcluster --skip-systemctl-redirect "$(basename "$v")" main start || true; done
fi
if ! pg_up; then
  echo "note: no PostgreSQL server on 127.0.0.1:5432: its tests will say they were skipped (under CI=true they fail)"
fi

if [ "$quick" = 0 ]; then
  step "cargo fmt --check"
  cargo fmt --all -- --check

  step "cargo clippy (warnings are errors)"
  cargo clippy --workspace --all-targets --all-features -- -D warnings

  step "orch-core wire types build for wasm32 without default features"
  cargo build -p orch-core --no-default-features --target wasm32-unknown-unknown

  step "the orch-core engine builds without the tokio runtime"
  cargo check -p orch-core --no-default-features --features engine
fi

step "cargo test"
cargo test --workspace --all-features --no-fail-fast 2>&1 | tee "$CARGO_TARGET_DIR/last-test.log"
status=${PIPESTATUS[0]}

# One closing line that sums up every test binary.
passed=$(grep -Eo '[0-9]+ passed' "$CARGO_TARGET_DIR/last-test.log" | awk '{s+=$1} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed' "$CARGO_TARGET_DIR/last-test.log" | awk '{s+=$1} END {print s+0}')
ignored=$(grep -Eo '[0-9]+ ignored' "$CARGO_TARGET_DIR/last-test.log" | awk '{s+=$1} END {print s+0}')
echo
echo "total: $passed passed, $failed failed, $ignored skipped"
exit "$status"
