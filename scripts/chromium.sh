#!/usr/bin/env bash
# Make sure headless Chromium (Debian's `chromium` package) is installed, and print its path.
# The report's browser test (tests/report/test_browser.py) and scripts/screenshot.sh call it;
# .ci/run calls it once before the tests. Installing needs root (or sudo) and apt-get.
set -euo pipefail
for name in chromium chromium-browser google-chrome; do
  if path=$(command -v "$name"); then
    echo "$path"
    exit 0
  fi
done
if ! command -v apt-get >/dev/null; then
  echo "chromium.sh: no Chromium, and no apt-get to install Debian's package" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "chromium.sh: installing Chromium needs root" >&2; exit 1; }
  sudo="sudo -n"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
$sudo apt-get -o DPkg::Lock::Timeout=300 install -y -qq chromium \
  fonts-dejavu-core >&2
command -v chromium
