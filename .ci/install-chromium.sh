#!/usr/bin/env bash
# Installs Debian's Chromium for the browser tests (test/ui-*.test.ts), only when it is missing.
# Called from .ci/run before `npm test`. Needs root (CI and developer machines run as root).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  echo "chromium: $(/usr/bin/chromium --version 2>/dev/null || echo present)"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium
echo "chromium: installed $(/usr/bin/chromium --version 2>/dev/null || true)"
