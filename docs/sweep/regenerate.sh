#!/usr/bin/env bash
# Rebuilds this page's results.json and figures from the points a sweep stored in its --out-dir
# (nothing is trained or evaluated again): bash docs/sweep/regenerate.sh RUN_DIR NAME
set -euo pipefail
cd "$(dirname "$0")/../.."
run="$1"
name="$2"
node apps/cli/dist/bin.js sweep --report-only --out-dir "$run" > /dev/null
mkdir -p docs/sweep/results
cp "$run/results.json" "docs/sweep/results/$name.json"
node apps/cli/dist/bin.js report --results "docs/sweep/results/$name.json" --out "$run/report-$name.html" \
  --svg-dir "docs/sweep/results/$name"
