#!/usr/bin/env bash
# Create or reuse .venv and install mtslvr with its dev extra. Re-runs the install only when
# pyproject.toml, constraints.txt or this script changed since the last successful install.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${MTSLVR_VENV:-.venv}
PYTHON=${PYTHON:-python3}
STAMP="$VENV/.mtslvr-installed"
want=$(cat pyproject.toml constraints.txt scripts/setup_env.sh scripts/debian-packages.txt | sha256sum | cut -d' ' -f1)

# Debian packages some tests need (see scripts/debian-packages.txt); installed only when missing.
missing=()
while read -r pkg; do
  [[ -z "$pkg" || "$pkg" == \#* ]] && continue
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done < scripts/debian-packages.txt
if ((${#missing[@]})); then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "setup: installing Debian packages: ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: warning: Debian packages missing and cannot install them here: ${missing[*]}" >&2
  fi
fi

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" && -x "$VENV/bin/python" ]]; then
  exit 0
fi

if [[ ! -x "$VENV/bin/python" ]]; then
  "$PYTHON" -c 'import sys; assert sys.version_info >= (3, 10), "mtslvr needs Python >= 3.10"'
  echo "setup: creating $VENV with $("$PYTHON" --version)"
  "$PYTHON" -m venv "$VENV"
fi
echo "setup: installing mtslvr[dev] into $VENV (torch pinned by constraints.txt)"
# The constraints file pins torch, so pip takes the local CPU wheel instead of pulling CUDA packages.
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]' 2>&1 \
  | { grep -v -E "^WARNING: Location .* is ignored" || true; }
test "${PIPESTATUS[0]}" -eq 0
# The HEAR 2021 submission validator (tests/test_hear.py runs it): its metadata requires tensorflow, which
# it imports but uses only for tensorflow models, so it is installed without dependencies (it needs only
# torch) and the test puts a stand-in tensorflow module in its place.
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps -c constraints.txt 'hearvalidator==2021.0.2'
echo "$want" > "$STAMP"
echo "setup: done"
