#!/usr/bin/env bash
# Render a report.html in headless Chromium and save a PNG screenshot, to check that tables and
# embedded plots show up without any external asset.
#
#   scripts/screenshot_report.sh RUN_OR_SWEEP_DIR [OUT.png] [HEIGHT]
#
# Writes the report first when the directory has none. Needs `chromium` (Debian: apt-get install
# chromium) or `chromium-browser` / `google-chrome` on PATH.
set -euo pipefail

target="${1:?usage: scripts/screenshot_report.sh RUN_OR_SWEEP_DIR [OUT.png] [HEIGHT]}"
out="${2:-$target/report-screenshot.png}"
height="${3:-2400}"
here="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-$here/.venv/bin/python}"

if [[ -f "$target" ]]; then
  html="$target"
else
  html="$target/report.html"
  if [[ ! -f "$html" ]]; then
    HF_HUB_OFFLINE=1 "$python" -m labconsole.cli report "$target" --format html >/dev/null
  fi
fi

browser=""
for candidate in chromium chromium-browser google-chrome; do
  if command -v "$candidate" >/dev/null 2>&1; then browser="$candidate"; break; fi
done
if [[ -z "$browser" ]]; then
  echo "no chromium found (apt-get install chromium)" >&2
  exit 3
fi

profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
abs_html="$(cd "$(dirname "$html")" && pwd)/$(basename "$html")"
abs_out="$(cd "$(dirname "$out")" 2>/dev/null && pwd || (mkdir -p "$(dirname "$out")" && cd "$(dirname "$out")" && pwd))/$(basename "$out")"
"$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" --hide-scrollbars --screenshot="$abs_out" \
  --window-size="1280,$height" "file://$abs_html" >/dev/null 2>&1
test -s "$abs_out"
echo "$abs_out"
