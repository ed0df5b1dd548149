#!/usr/bin/env bash
# Render a real lrtune report and take a full-page screenshot of it in headless Chromium.
#
#   scripts/screenshot.sh [OUT_DIR]        # default OUT_DIR: reports/
#
# Tunes the digits task as `lrtune demo` does (storing the study in OUT_DIR/demo.db), runs an
# LR range test for it, writes OUT_DIR/report.html with `lrtune report` and its screenshot
# OUT_DIR/report.png. Takes about a minute on two cores; installs Chromium if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-reports}
python=${PYTHON:-.venv/bin/python}
db="sqlite:///$out/demo.db"
mkdir -p "$out"
rm -f "$out/demo.db"
bash scripts/chromium.sh >/dev/null
"$python" -m lrtune.cli demo --storage "$db" --study demo
"$python" - "$db" <<'PY'
import sys

import torch

import lrtune
from lrtune.finder import find
from lrtune.report import store_range_test
from lrtune.tasks import get_task

task = get_task("digits")
model = task.make_model(0)
optimizer = lrtune.build_optimizer("sgd", model.parameters(), 1e-3, task.weight_decay)
result = find(model, optimizer, task.train_loader(0), torch.nn.functional.cross_entropy,
              schedule=task.schedule(task.steps))
store_range_test(lrtune.load_study("demo", sys.argv[1]), result)
print(f"range test: {result}")
PY
"$python" -m lrtune.cli report demo --storage "$db" -o "$out/report.html"
"$python" tests/report/browser.py "$out/report.html" "$out/report.png"
