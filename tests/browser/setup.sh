#!/usr/bin/env bash
# Install what the dashboard's browser test needs, when missing:
# Debian's Chromium (/usr/bin/chromium; needs root, as CI runs) and
# playwright-core from npm into tests/browser/node_modules (gitignored).
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "Chromium is missing: run 'sudo apt-get update && sudo apt-get install -y chromium'" >&2
    exit 1
  fi
  echo "installing Debian's chromium..."
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
if [ ! -f node_modules/playwright-core/package.json ]; then
  echo "installing playwright-core from npm into tests/browser/node_modules..."
  npm ci --no-audit --no-fund --loglevel=error
fi
