#!/usr/bin/env bash
# Run every fuzz target for a bounded time: fuzz/run.sh [SECONDS] [TARGET...]
#
#   SECONDS  time per target (default 60)
#   TARGET   config, protocol, audit_text (default: all three, one after another)
#
# Needs a nightly toolchain (libFuzzer's instrumentation) and cargo-fuzz:
#   rustup toolchain install nightly && cargo install cargo-fuzz
# Environment: FUZZ_TOOLCHAIN (default nightly), FUZZ_SANITIZER (default none:
# the code under test is safe Rust, so the fuzzer looks for panics, aborts,
# stack overflows and broken properties; `address` works too, at a third to a fifth of the speed),
# CARGO_TARGET_DIR.
#
# The seeds are tests/corpus/<kind>/ (read only); what the fuzzer learns goes to
# fuzz/corpus/<target>/, crashing inputs to fuzz/artifacts/<target>/, the log of
# each run to fuzz/logs/<target>.log (all ignored by git). A crash makes the
# script exit 1 after the other targets have run; reproduce one with
#   cargo +nightly fuzz run -s none -a TARGET fuzz/artifacts/TARGET/crash-...
# and keep it as tests/corpus/<kind>/ (tests/fuzz_regressions.rs replays it).
set -uo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(config protocol audit_text)
toolchain=${FUZZ_TOOLCHAIN:-nightly}
sanitizer=${FUZZ_SANITIZER:-none}

if ! [[ $seconds =~ ^[0-9]+$ ]] || [ "$seconds" -eq 0 ]; then
    echo "usage: fuzz/run.sh [SECONDS] [config|protocol|audit_text ...]" >&2
    exit 2
fi
if ! rustup toolchain list | grep -q "^$toolchain"; then
    echo "fuzz/run.sh: no $toolchain toolchain; rustup toolchain install $toolchain" >&2
    exit 2
fi
if ! cargo "+$toolchain" fuzz --version >/dev/null 2>&1; then
    echo "fuzz/run.sh: cargo-fuzz is missing; cargo install cargo-fuzz" >&2
    exit 2
fi

# The config target writes a file per input into a scratch folder of its own:
# on tmpfs (/dev/shm) that is 20x faster than on disk. Removed at the end.
base=${TMPDIR:-/tmp}
[ -d /dev/shm ] && [ -w /dev/shm ] && base=/dev/shm
scratch=$(mktemp -d "$base/ai-dawg-fuzz.XXXXXX") || exit 1
trap 'rm -rf "$scratch"' EXIT
export TMPDIR=$scratch

fuzz=(cargo "+$toolchain" fuzz)
flags=(--fuzz-dir fuzz --sanitizer "$sanitizer" --debug-assertions)
"${fuzz[@]}" build "${flags[@]}" || exit 1

mkdir -p fuzz/logs
failed=()
for target in "${targets[@]}"; do
    case $target in
        config) seeds=tests/corpus/config max_len=16384 ;;
        protocol) seeds=tests/corpus/protocol max_len=65536 ;; # MAX_REQUEST_BYTES
        audit_text) seeds=tests/corpus/text max_len=4096 ;;
        *) echo "fuzz/run.sh: unknown target $target" >&2; exit 2 ;;
    esac
    mkdir -p "fuzz/corpus/$target" "fuzz/artifacts/$target"
    echo "== $target: ${seconds}s"
    "${fuzz[@]}" run "${flags[@]}" "$target" "fuzz/corpus/$target" "$seeds" -- \
        -max_total_time="$seconds" -max_len="$max_len" -timeout=10 -rss_limit_mb=4096 \
        -dict="fuzz/dicts/$target.dict" -print_final_stats=1 \
        >"fuzz/logs/$target.log" 2>&1
    status=$?
    runs=$(grep -h 'stat::number_of_executed_units' "fuzz/logs/$target.log" \
        | awk '{n += $2} END {print n + 0}')
    if [ $status -eq 0 ]; then
        echo "   ok: $runs executions, corpus $(ls "fuzz/corpus/$target" | wc -l) inputs"
    else
        echo "   FAILED (exit $status) after $runs executions: see fuzz/logs/$target.log"
        ls "fuzz/artifacts/$target" | sed 's/^/   artifact: /'
        failed+=("$target")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz/run.sh: failed: ${failed[*]}"
    exit 1
fi
echo "fuzz/run.sh: no failure in ${#targets[@]} target(s), ${seconds}s each"
