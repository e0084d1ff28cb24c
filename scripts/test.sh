#!/usr/bin/env bash
# Runs every check and test of the workspace. Installs what a fresh machine lacks, idempotently.
#
#   scripts/test.sh            # all checks and tests
#   scripts/test.sh --quick    # tests only (no fmt/clippy/doc/wasm)
#
# Environment: CARGO_TARGET_DIR (default: $HOME/.cache/orch-target, reused between runs); ORCH_VENV (the
# virtualenv of the Python package's tests, default: $HOME/.cache/orch-venv, made when missing).
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

# strace: the crash test (orch-web/tests/cli_crash.rs, ignored by a plain `cargo test`) kills orch at each
# disk sync with it. Installed when missing (apt-get update only if the install fails without it).
if ! command -v strace >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  step "installing strace"
  apt-get install -y strace || { apt-get update && apt-get install -y strace; } || true
fi
run_strace=0
if command -v strace >/dev/null 2>&1 || [ "${CI:-}" = "true" ]; then
  run_strace=1
else
  echo "note: strace is not installed: the crash test is skipped (under CI=true it fails)"
fi

# Chromium and chromedriver (Debian's; never a downloaded browser): the dashboard's browser test
# (orch-web/tests/ui_browser.rs, ignored by a plain `cargo test`) drives them. Installed when missing; the
# test runs when both are there, and always under CI=true (a missing one then fails it).
have_browser() { command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; }
if ! have_browser && command -v apt-get >/dev/null 2>&1; then
  step "installing chromium and chromium-driver"
  apt-get install -y chromium chromium-driver || { apt-get update && apt-get install -y chromium chromium-driver; } || true
fi
# brotli: scripts/build-ui.sh adds brotli copies of the dashboard's files when it is there (optional).
if ! command -v brotli >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  apt-get install -y brotli || true
fi
run_browser=0
if have_browser || [ "${CI:-}" = "true" ]; then
  run_browser=1
else
  echo "note: chromium or chromedriver is missing: the dashboard's browser test is skipped (under CI=true it fails)"
fi

# PostgreSQL: its tests are ignored by a plain `cargo test`, and run below with --ignored when a server
# listens on 127.0.0.1:5432 (or ORCH_TEST_PG_URL), and always under CI=true (a missing server then fails).
# Under CI, a server that is installed but stopped is started (idempotent).
pg_up() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }
if [ "${CI:-}" = "true" ] && ! pg_up && command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  step "starting the local PostgreSQL server"
  for v in /etc/postgresql/*; do pg_ctlcluster --skip-systemctl-redirect "$(basename "$v")" main start || true; done
fi
run_pg=0
if pg_up || [ -n "${ORCH_TEST_PG_URL:-}" ] || [ "${CI:-}" = "true" ]; then
  run_pg=1
else
  echo "note: no PostgreSQL server on 127.0.0.1:5432: its tests are skipped (under CI=true they fail)"
fi

if [ "$quick" = 0 ]; then
  step "cargo fmt --check"
  cargo fmt --all -- --check

  step "cargo clippy (warnings are errors)"
  cargo clippy --workspace --all-targets --all-features -- -D warnings

  step "cargo doc (broken or private links in the API docs are errors)"
  RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features

  step "the dashboard (orch-ui-leptos, its views build for wasm32 only) passes clippy for wasm32"
  cargo clippy -p orch-ui-leptos --target wasm32-unknown-unknown --all-targets -- -D warnings

  step "orch-core wire types build for wasm32 without default features"
  cargo build -p orch-core --no-default-features --target wasm32-unknown-unknown

  step "the orch-core engine builds without the tokio runtime"
  cargo check -p orch-core --no-default-features --features engine

  step "the store contracts (wire types + Store trait) build alone, as the store crates use them"
  cargo check -p orch-core --no-default-features --features store
fi

step "cargo test"
log="$CARGO_TARGET_DIR/last-test.log"
ignored_log="$CARGO_TARGET_DIR/last-test-ignored.log"
: >"$ignored_log"
status=0
cargo test --workspace --all-features --no-fail-fast 2>&1 | tee "$log" || status=1

# The dashboard, built into orch-ui-leptos/dist (installs wasm-bindgen-cli when missing), for its
# browser test below and for `orch serve`.
step "the dashboard: scripts/build-ui.sh"
if ! scripts/build-ui.sh; then
  echo "the dashboard does not build"
  status=1
fi

# The tests that need PostgreSQL, strace or a browser are ignored above; run exactly those (and no other
# ignored test): the PostgreSQL crate's, and the ignored ones of the CLI tests that need a server, strace
# or Chromium.
if [ "$run_pg" = 1 ]; then
  step "cargo test: the PostgreSQL tests"
  cargo test -p orch-store-postgres --all-features --no-fail-fast --tests -- --ignored 2>&1 | tee -a "$ignored_log" ||
    status=1
fi
cli_tests=()
[ "$run_pg" = 1 ] && cli_tests+=(--test cli_db --test cli_busy --test cli_interrupt --test cli_kill --test cli_adw_detached --test cli_plan --test cli_graph)
[ "$run_strace" = 1 ] && cli_tests+=(--test cli_crash)
[ "$run_browser" = 1 ] && cli_tests+=(--test ui_browser --test ui_inbox)
if [ "${#cli_tests[@]}" -gt 0 ]; then
  step "cargo test: the CLI tests that need PostgreSQL, strace or a browser"
  cargo test -p orch-web --all-features --no-fail-fast "${cli_tests[@]}" -- --ignored 2>&1 | tee -a "$ignored_log" ||
    status=1
fi

# The Python package (orch-py): built into a virtualenv of its own (made when missing, with maturin,
# pytest, schemathesis and mypy from PyPI), then its tests run with a real CPython. `maturin develop` builds into the same
# CARGO_TARGET_DIR, so a second run only reinstalls the package. Its PostgreSQL tests run when the Rust
# ones do.
py_log="$CARGO_TARGET_DIR/last-test-python.log"
: >"$py_log"
venv="${ORCH_VENV:-$HOME/.cache/orch-venv}"
# Makes the virtualenv when missing (installing python3-venv when the interpreter lacks it), with
# maturin and pytest.
py_env() {
  if [ ! -x "$venv/bin/python" ] && ! python3 -m venv "$venv"; then
    command -v apt-get >/dev/null 2>&1 || return 1
    rm -rf "$venv"
    apt-get install -y python3-venv || { apt-get update && apt-get install -y python3-venv; } || return 1
    python3 -m venv "$venv" || return 1
  fi
  local pkg
  for pkg in maturin pytest schemathesis mypy; do
    "$venv/bin/python" -c "import $pkg" 2>/dev/null || "$venv/bin/python" -m pip install --quiet "$pkg" || return 1
  done
}
step "the Python package: build it into $venv and run its tests (pytest)"
if ! command -v python3 >/dev/null 2>&1; then
  echo "python3 is not installed: the Python package cannot be tested" | tee -a "$py_log"
  status=1
elif ! py_env; then
  echo "could not make the virtualenv $venv with maturin and pytest" | tee -a "$py_log"
  status=1
elif ! (cd orch-py && VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH" maturin develop --quiet); then
  echo "maturin develop failed: the Python package does not build" | tee -a "$py_log"
  status=1
else
  # With the package's tests, the property-based run of `orch serve`'s API against its OpenAPI document
  # (schemathesis; the `orch` binary the cargo tests built), and the tests of the scripts in scripts/.
  ORCH_TEST_PG="$run_pg" ORCH_BIN="$CARGO_TARGET_DIR/debug/orch" "$venv/bin/python" -m pytest -q -p no:cacheprovider \
    orch-py/tests orch-web/tests/openapi scripts/tests 2>&1 | tee -a "$py_log" || status=1
fi

# One closing line that sums up every test binary. A test ignored in the first run and run in a second is
# counted once, as what it did there.
count() { awk -v w="$1" '/^test result:/ { for (i = 2; i <= NF; i++) if ($i == w";") s += $(i - 1) } END { print s + 0 }' "$2"; }
passed=$(($(count passed "$log") + $(count passed "$ignored_log")))
failed=$(($(count failed "$log") + $(count failed "$ignored_log")))
ran_later=$(($(count passed "$ignored_log") + $(count failed "$ignored_log")))
skipped=$(($(count ignored "$log") - ran_later + $(count ignored "$ignored_log")))
# pytest closes with a line such as `2 failed, 18 passed, 1 skipped in 1.56s`; the last one counts.
pycount() {
  awk -v w="$1" '
    { n = -1; for (i = 1; i < NF; i++) if ($i == "in" && $(i + 1) ~ /^[0-9.]+s$/) n = i }
    n > 1 && $1 ~ /^[0-9]+$/ { s = 0; for (i = 2; i < n; i++) { f = $i; sub(/,$/, "", f); if (f == w) s = $(i - 1) } }
    END { print s + 0 }' "$py_log"
}
passed=$((passed + $(pycount passed)))
failed=$((failed + $(pycount failed) + $(pycount error) + $(pycount errors)))
skipped=$((skipped + $(pycount skipped)))
echo
echo "total: $passed passed, $failed failed, $skipped skipped"
exit "$status"
