#!/usr/bin/env bash
# The dashboard's browser test on its own: install what is missing, build the
# binary, then drive the dashboard of a real supervisor in headless Chromium.
# Prints one line per check and `browser: N passed, M failed`; exits non-zero
# on failure. Screenshot: tests/browser/artifacts/dashboard.png.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash tests/browser/setup.sh
cargo build --quiet
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
AI_DAWG_BIN="$target_dir/debug/ai-dawg-manager" node tests/browser/dashboard.spec.mjs
