#!/usr/bin/env bash
# The chat widget in a real browser: headless Chromium (Debian's
# /usr/bin/chromium, or $CHROMIUM) driven by playwright-core, against the
# debug binary serving /widget.js and the SDK API on a fresh SQLite
# database, with host pages on another origin, a real SMTP server and a
# fake OpenAI-compatible model, all on 127.0.0.1 and started and stopped
# by the suite (widget.test.mjs). Screenshots of the key states go to
# target/browser-screenshots/.
#
# The tools are the versions locked in package-lock.json, installed with
# `npm ci` into target/browser-suite on first use (again only when the
# lock changes); later runs need no network. playwright-core downloads no
# browser. Expects `cargo build --bin chatdesk` done (make test-browser
# builds first).
set -euo pipefail
cd "$(dirname "$0")/../.."

src=tests/browser
work=target/browser-suite
shots=target/browser-screenshots
chromium=${CHROMIUM:-/usr/bin/chromium}
mkdir -p "$work" "$shots"

if [ ! -x "$chromium" ]; then
  echo "browser suite: no Chromium at $chromium (make test-browser installs Debian's chromium)" >&2
  exit 1
fi
if [ ! -x target/debug/chatdesk ]; then
  echo "browser suite: target/debug/chatdesk is missing; run cargo build --bin chatdesk first" >&2
  exit 1
fi

# No usage reports, update checks or browser downloads from the tools.
export NO_UPDATE_NOTIFIER=1 PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

if ! cmp -s "$src/package-lock.json" "$work/installed-lock.json" || [ ! -d "$work/node_modules" ]; then
  echo "browser suite: installing the locked tools into $work (npm ci)"
  rm -f "$work/installed-lock.json"
  cp "$src/package.json" "$src/package-lock.json" "$work/"
  (cd "$work" && npm ci --prefer-offline --no-audit --no-fund --loglevel=error)
  cp "$src/package-lock.json" "$work/installed-lock.json"
fi

# The widget's script must at least parse before a browser loads it.
node --check crates/api/assets/widget.js

# The suite's files sit beside the installed node_modules, so their
# imports resolve there.
cp "$src"/*.mjs "$work/"
rm -rf "${shots:?}"/*
log="$PWD/$work/chatdesk-serve.log"
status=0
CHATDESK_ROOT="$PWD" CHROMIUM="$chromium" SCREENSHOT_DIR="$PWD/$shots" CHATDESK_LOG="$log" \
  timeout -k 10 170 node --test-reporter=spec "$work/widget.test.mjs" || status=$?
if [ "$status" -ne 0 ]; then
  [ "$status" -eq 124 ] && echo "browser suite: stopped after 170 s" >&2
  if [ -s "$log" ]; then
    echo "browser suite: the last lines of chatdesk serve's log ($log):" >&2
    tail -n 30 "$log" >&2
  fi
fi
exit "$status"
