#!/usr/bin/env bash
# Create or reuse .venv and install mtslvr with its dev extra. Re-runs the install only when
# pyproject.toml, constraints.txt or this script changed since the last successful install.
# With --test (what `make test` runs) it also installs the Debian packages only the tests need
# (scripts/debian-packages.txt: chromium, Slurm, munge, MariaDB), in parallel with the Python install;
# `make demo` runs it without, so the main job installs only the venv.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${MTSLVR_VENV:-.venv}
PYTHON=${PYTHON:-python3}
STAMP="$VENV/.mtslvr-installed"
want=$(cat pyproject.toml constraints.txt scripts/setup_env.sh | sha256sum | cut -d' ' -f1)

# Test-only Debian packages: installed only when missing (dpkg is the stamp), in the background.
apt_pid=""
apt_log=""
if [[ "${1:-}" == "--test" ]]; then
  missing=()
  while read -r pkg; do
    [[ -z "$pkg" || "$pkg" == \#* ]] && continue
    [[ "$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null)" == installed ]] || missing+=("$pkg")
  done < scripts/debian-packages.txt
  if ((${#missing[@]})); then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
      echo "setup: installing Debian packages for the tests (in the background): ${missing[*]}"
      apt_log=$(mktemp /tmp/mtslvr-apt.XXXXXX.log)
      (
        # No daemon may start from a package's install script (no init system here, and the tests start
        # their own): a policy-rc.d that refuses, unless one is already there (Docker images have one).
        added_policy=""
        if [[ ! -e /usr/sbin/policy-rc.d ]]; then
          printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
          added_policy=1
        fi
        trap 'if [[ -n "$added_policy" ]]; then rm -f /usr/sbin/policy-rc.d; fi' EXIT
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
          -o Dpkg::Options::=--force-unsafe-io "${missing[@]}"
      ) > "$apt_log" 2>&1 &
      apt_pid=$!
    else
      echo "setup: warning: Debian packages the tests need are missing and cannot be installed here" \
           "(needs root and apt-get): ${missing[*]}" >&2
    fi
  fi
fi

wait_apt() {
  [[ -z "$apt_pid" ]] && return 0
  if wait "$apt_pid"; then
    echo "setup: Debian packages installed"; rm -f "$apt_log"
  else
    echo "setup: FAILED to install the Debian packages; apt-get said (last lines of $apt_log):" >&2
    tail -n 30 "$apt_log" >&2
    return 1
  fi
}

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" && -x "$VENV/bin/python" ]]; then
  wait_apt
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
wait_apt
echo "setup: done"
