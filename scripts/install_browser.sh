#!/usr/bin/env bash
# Install headless Chromium (Debian's `chromium` package) for the browser tests in tests/api/test_browser.py,
# plus a small Chinese font (fonts-wqy-microhei, 1.6 MB) so Chinese text renders in screenshots instead of boxes.
# Idempotent: installs only what is missing; does nothing when both are present.
# We deliberately do NOT run `playwright install` (it downloads browsers); the tests drive /usr/bin/chromium.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

packages=()
[ -x "$CHROMIUM" ] || packages+=(chromium)
if ! command -v fc-list >/dev/null 2>&1 || [ -z "$(fc-list :lang=zh family 2>/dev/null | head -n 1)" ]; then
    packages+=(fonts-wqy-microhei)
fi

if [ ${#packages[@]} -eq 0 ]; then
    echo "chromium already installed: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "error: need root (or sudo) to apt-get install ${packages[*]}" >&2
        exit 1
    fi
fi

echo "installing: ${packages[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${packages[@]}"

if [ ! -x "$CHROMIUM" ]; then
    echo "error: the chromium package is installed but $CHROMIUM was not found" >&2
    exit 1
fi
echo "chromium installed: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
