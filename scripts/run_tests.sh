#!/usr/bin/env bash
# The whole test suite, in the order the test contract gives (CONVENTIONS.md):
# notebooks and library in sync, notebook hygiene, every notebook test but `cuda`, then pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${MTSLVR_VENV:-.venv}
export PATH="$PWD/$VENV/bin:$PATH"
# Notebook workers and pytest keep torch to one thread each: 2 cores, several workers.
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 MTSLVR_TORCH_THREADS=1
export PYDEVD_DISABLE_FILE_VALIDATION=1 MPLBACKEND=Agg

step() { echo; echo "== $* =="; }
t0=$SECONDS

step "sync: nbdev-export + experiment parameters + nbdev-clean + README rendering must change nothing"
snapshot() { git ls-files -co --exclude-standard -z | xargs -0 -r sha256sum 2>/dev/null; }
if git rev-parse --git-dir >/dev/null 2>&1; then before=$(snapshot); fi
nbdev-export
python scripts/experiment_parameters.py
nbdev-clean
python scripts/render_readme.py
if git rev-parse --git-dir >/dev/null 2>&1; then
  after=$(snapshot)
  if [[ "$before" != "$after" ]]; then
    echo "FAIL: nbdev-export / nbdev-clean / README rendering changed these files:"
    diff <(echo "$before") <(echo "$after") | sed -n 's/^> [0-9a-f]*  /  /p'
    echo "Edit nbs/*.ipynb (never mtslvr/*.py), run 'make sync', and commit the result."
    exit 1
  fi
  # On a fresh clone (CI) the tree must be exactly the commit: nothing generated was left out.
  if [[ "${CI:-}" == "true" && -n "$(git status --porcelain)" ]]; then
    echo "FAIL: git status is not empty after the sync step:"; git status --porcelain; exit 1
  fi
fi
echo "in sync"

step "notebook hygiene"
python scripts/check_notebooks.py

step "nbdev-test --flags slow (all notebooks; cuda cells skipped without a GPU)"
nbdev-test --flags slow --n-workers 2 --timing

step "pytest tests/"
python -m pytest tests/ --durations=15 -q
echo
echo "all tests finished in $((SECONDS - t0)) s"
