#!/usr/bin/env bash
# A benchmark-only environment with the peers (never the library's own install): it reuses the
# project's .venv packages through --system-site-packages and adds torch-audiomentations,
# audiomentations and a pure-Python torchaudio (PEERS.md: the registry's torchaudio 2.11.0 is a CUDA
# build that fails to import on CPU torch; without its compiled parts it falls back to Python).
# The project's venv is $MTSLVR_VENV when set (as for scripts/setup_env.sh), else .venv in the repo root.
# Run the benchmarks with PYTHONPATH=$PWD so that `import mtslvr` is this checkout's, whichever venv
# holds mtslvr's editable install.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${MTSLVR_VENV:-.venv}
bash scripts/setup_env.sh
PEERS=benchmarks/.venv-peers
STAMP="$PEERS/.installed"
want=$(sha256sum benchmarks/setup_peers.sh | cut -d' ' -f1)
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then exit 0; fi
rm -rf "$PEERS"
"$VENV/bin/python" -m venv --system-site-packages "$PEERS"
# --system-site-packages of a venv made from a venv sees the base interpreter, not $VENV: add $VENV's site.
site=$("$VENV/bin/python" -c 'import site; print(site.getsitepackages()[0])')
peer_site=$("$PEERS/bin/python" -c 'import site; print(site.getsitepackages()[0])')
# addsitedir (not a bare path) so $VENV's own .pth files run too: mtslvr's editable install is one of them.
echo "import site; site.addsitedir('$site')" > "$peer_site/_mtslvr_venv.pth"
"$PEERS/bin/pip" install -q --disable-pip-version-check -c constraints.txt --no-deps torchaudio==2.11.0 2>&1 | grep -v "^WARNING: Location" || true
rm -f "$peer_site"/torchaudio/lib/*.so
"$PEERS/bin/pip" install -q --disable-pip-version-check -c constraints.txt \
  torch-audiomentations==0.12.0 audiomentations==0.43.1 librosa 2>&1 | grep -v "^WARNING: Location" || true
"$PEERS/bin/python" -c "import torch_audiomentations, audiomentations, torchaudio; print('peers ok: torchaudio', torchaudio.__version__)"
echo "$want" > "$STAMP"
