#!/usr/bin/env bash
# bench/run.sh [--quick] [--only ours,supervisord,pm2] [--keep]
#
# Benchmark ai-dawg-manager against supervisord and PM2 on the same tiny test
# service (bench/README.md has the method). Installs the peers into bench/
# (never system-wide), builds everything, runs every scenario against all
# three and prints one table. Raw results go to bench/results/.
set -euo pipefail

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
BUILD="$BENCH/.build"
SUPERVISOR_VERSION="4.3.0"
PM2_VERSION="7.0.4"

say() { printf '\033[1m[bench]\033[0m %s\n' "$*" >&2; }

# ---- peers, installed into the bench folder -----------------------------------
if [[ ! -x "$BENCH/.venv/bin/supervisord" ]]; then
    say "installing supervisor $SUPERVISOR_VERSION into bench/.venv"
    python3 -m venv "$BENCH/.venv"
    "$BENCH/.venv/bin/pip" install --quiet --disable-pip-version-check "supervisor==$SUPERVISOR_VERSION"
fi
if [[ ! -x "$BENCH/node_modules/.bin/pm2" ]]; then
    say "installing pm2 $PM2_VERSION into bench/node_modules"
    (cd "$BENCH" && npm install --no-audit --no-fund --loglevel=error)
fi

# ---- ours ----------------------------------------------------------------------
say "building ai-dawg-manager --release"
(cd "$ROOT" && cargo build --release --quiet)
OURS="${CARGO_TARGET_DIR:-$ROOT/target}/release/ai-dawg-manager"
[[ "$OURS" = /* ]] || OURS="$ROOT/$OURS"
[[ -x "$OURS" ]] || { say "no binary at $OURS"; exit 1; }

# ---- the test service and the measuring client ------------------------------------
mkdir -p "$BUILD"
# Static when the C library allows it: exec + dynamic loading is then not part
# of what a restart costs (it is the same for all three supervisors anyway).
if ! gcc -O2 -Wall -static -o "$BUILD/tiny_service" "$BENCH/tiny_service.c" 2>/dev/null; then
    gcc -O2 -Wall -o "$BUILD/tiny_service" "$BENCH/tiny_service.c"
fi
gcc -O2 -Wall -pthread -o "$BUILD/measure" "$BENCH/measure.c"
gcc -O2 -Wall -o "$BUILD/floor" "$BENCH/floor.c"

# ---- file descriptors for 1000 services ------------------------------------------------
want=65536
hard="$(ulimit -Hn)"
if [[ "$hard" != unlimited && "$hard" -lt "$want" ]]; then
    ulimit -Hn "$want" 2>/dev/null || say "the system refuses to raise the hard limit of open files above $hard"
    hard="$(ulimit -Hn)"
    [[ "$hard" != unlimited && "$hard" -lt "$want" ]] && want="$hard"
fi
ulimit -n "$want" 2>/dev/null || say "the system refuses ulimit -n $want (soft limit stays $(ulimit -n))"
say "open files limit: $(ulimit -n)"

exec python3 "$BENCH/bench.py" \
    --ours "$OURS" \
    --tiny "$BUILD/tiny_service" \
    --measure "$BUILD/measure" \
    --supervisord "$BENCH/.venv/bin/supervisord" \
    --supervisorctl "$BENCH/.venv/bin/supervisorctl" \
    --pm2 "$BENCH/node_modules/.bin/pm2" \
    --floor "$BUILD/floor" \
    --results "$BENCH/results" \
    "$@"
