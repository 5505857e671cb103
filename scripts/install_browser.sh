#!/usr/bin/env bash
# The headless browser the run-viewer test opens (`r1 report RUN_DIR --html`, tests/test_viewer*.py):
# Debian's chromium. Installed with apt when missing and we may (root, or passwordless sudo); otherwise
# a note, and the browser test skips with that reason. Nothing else in r1 needs a browser.
set -uo pipefail
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install_browser: no apt-get here; install chromium to run the viewer's browser test" >&2
  exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
    echo "install_browser: not root; install chromium to run the viewer's browser test" >&2
    exit 0
  fi
fi
$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null \
  || echo "install_browser: apt-get install chromium failed; the viewer's browser test will skip" >&2
exit 0
