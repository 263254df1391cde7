#!/usr/bin/env bash
# One prepared check for a machine with CUDA (<= 5 minutes on one H100/H200), ending with one table:
#   1. the `cuda` cells of the notebooks that have them (each notebook's cells in order, `slow` cells left out);
#   2. benchmarks/train_step.py at ResNet-18 size, AMP off and on (the script times both on CUDA);
#   3. benchmarks/augment.py --device cuda (mtslvr's pipeline; the peers need their own venv: --skip-peers);
#   4. benchmarks/fewshot.py --device cuda --tasks 10000;
#   5. 200 steps of the paper profile (ResNet-18, batch 100, 10 s clips padded from the bundled pool): seconds per
#      step, peak GPU memory, and the 50,000 steps of the paper extrapolated from them.
#
# Here (any machine with pip and the registries), once:   bash benchmarks/gpu_check.sh --prepare
#   downloads, into .whl/, Python 3.12 wheels of what the GPU machine lacks (it has torch, numpy, scikit-learn,
#   scipy, pyyaml, tqdm; not soundfile, soxr, plotly, fastcore, IPython, submitit).
# There:                                                  bash benchmarks/gpu_check.sh
#   installs .whl/*.whl into /tmp/site when .whl/ exists, then runs the five steps; the logs and the table go to
#   $OUT (if set) or runs/gpu_check/.
# Anywhere, to check the script itself on a CPU in a minute: bash benchmarks/gpu_check.sh --quick --device cpu
#   (every step, tiny; step 1 is skipped without CUDA).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DEVICE=cuda
QUICK=0
PY=${PYTHON:-}
WHEELS=(soundfile cffi pycparser soxr plotly narwhals fastcore submitit ipython decorator jedi parso matplotlib-inline
        pexpect ptyprocess prompt-toolkit wcwidth stack-data asttokens executing pure-eval traitlets
        ipython-pygments-lexers)

while (($#)); do
  case "$1" in
    --prepare)
      py=${PY:-python3}; [[ -x .venv/bin/python ]] && py=.venv/bin/python
      grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
      mkdir -p .whl
      for w in "${WHEELS[@]}"; do
        "$py" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
          --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
          --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any -d .whl "$w" \
          || { echo "gpu_check --prepare: no Python 3.12 wheel of $w" >&2; exit 1; }
      done
      echo "wheels in .whl/ ($(du -sh .whl | cut -f1)): carry .whl to the GPU machine and run: bash benchmarks/gpu_check.sh"
      exit 0;;
    --quick) QUICK=1;;
    --device) DEVICE=$2; shift;;
    *) echo "usage: bash benchmarks/gpu_check.sh [--prepare | --quick] [--device cuda|cpu]" >&2; exit 2;;
  esac
  shift
done

if [[ -z "$PY" ]]; then if [[ -x .venv/bin/python ]]; then PY=$ROOT/.venv/bin/python; else PY=python3; fi; fi
if [[ -d .whl ]] && ls .whl/*.whl >/dev/null 2>&1 && ! "$PY" -c "import soundfile, soxr, plotly, fastcore" 2>/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "gpu_check: installing .whl/*.whl failed" >&2; exit 1; }
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
LOGS=${OUT:-$ROOT/runs/gpu_check}
mkdir -p "$LOGS"
TABLE=$LOGS/table.md
: > "$LOGS/rows.tsv"
row() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >> "$LOGS/rows.tsv"; }
has_cuda=$("$PY" -c "import torch; print(int(torch.cuda.is_available()))" 2>/dev/null || echo 0)
if [[ "$DEVICE" == cuda && "$has_cuda" != 1 ]]; then echo "gpu_check: torch sees no CUDA device (use --device cpu --quick to check the script)" >&2; exit 1; fi
"$PY" -c "import torch, platform; print('torch', torch.__version__, '| python', platform.python_version(), '|', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no CUDA')" | tee "$LOGS/device.txt"

step() {  # step NAME SECONDS COMMAND...: run with a time limit, log, record ok/failed
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS
  echo; echo "== $name (limit ${limit}s)"
  timeout "$limit" "$@" > "$LOGS/$name.log" 2>&1; local rc=$?
  tail -n 25 "$LOGS/$name.log"
  echo "-- $name: rc=$rc in $((SECONDS - t0)) s"
  return $rc
}

# 1. the cuda cells: each notebook that has them, its cells in order (exported, hidden and test cells too, as
#    nbdev-test runs them), `slow` and `eval: false` cells left out.
if [[ "$has_cuda" == 1 ]]; then
  step cuda_cells 120 "$PY" - <<'EOF'
import json, os, pathlib, re, sys, time, traceback
os.environ.setdefault("IN_TEST", "1")
nbs = sorted(p for p in pathlib.Path("nbs").glob("*.ipynb") if "#| cuda" in p.read_text())
bad = 0
for p in nbs:
    cells = [c for c in json.loads(p.read_text())["cells"] if c["cell_type"] == "code"]
    src = ["".join(c["source"]) for c in cells]
    flags = lambda s: set(re.findall(r"^#\|\s*(slow|cuda|eval:\s*false)\s*$", s, re.M))
    ns, t0, n_cuda = {"__name__": "__main__"}, time.time(), 0
    os.chdir(p.parent)
    try:
        for s in src:
            f = flags(s)
            if "slow" in f or any(x.startswith("eval") for x in f): continue
            n_cuda += "cuda" in f
            exec(compile(s, f"{p.name}", "exec"), ns)
        print(f"{p.name}: {n_cuda} cuda cell(s) passed ({time.time() - t0:.1f} s)")
    except Exception:
        bad += 1; print(f"{p.name}: FAILED"); traceback.print_exc()
    os.chdir("..")
sys.exit(1 if bad else 0)
EOF
  rc=$?; row "cuda notebook cells" "$([[ $rc == 0 ]] && echo passed || echo "FAILED (rc $rc)")" "$(grep -c 'passed' "$LOGS/cuda_cells.log") notebooks"
else
  row "cuda notebook cells" "skipped" "no CUDA device"
fi

# 2. a training step at ResNet-18 size (AMP off and on on CUDA)
if ((QUICK)); then ts=(--sizes demo --variants mt_parallel --steps 1 --batch 4); else ts=(--sizes resnet18 --variants cont_only,mt_parallel); fi
step train_step 120 "$PY" benchmarks/train_step.py --device "$DEVICE" "${ts[@]}"
rc=$?; row "train_step.py ${ts[*]}" "$([[ $rc == 0 ]] && echo ok || echo "FAILED (rc $rc)")" "$(grep -E '^(cont_only|mt_parallel|AMP|amp|[a-z0-9_]+:)' "$LOGS/train_step.log" | tr '\n' ';' | tr -s ' ' | cut -c1-400)"

# 3. the augmentation pipeline
if ((QUICK)); then au=(--batch 4 --repeats 1); else au=(--batch 128 --repeats 4); fi
step augment 90 "$PY" benchmarks/augment.py --device "$DEVICE" --skip-peers "${au[@]}"
rc=$?; row "augment.py ${au[*]}" "$([[ $rc == 0 ]] && echo ok || echo "FAILED (rc $rc)")" "$(grep -E '^mtslvr pipeline' "$LOGS/augment.log" | tr -s ' ' | cut -c1-200) views/s"

# 4. few-shot evaluation
if ((QUICK)); then fs=(--tasks 200 --steps 3 --repeats 1); else fs=(--tasks 10000); fi
step fewshot 120 "$PY" benchmarks/fewshot.py --device "$DEVICE" --out "$LOGS/bench-fewshot" "${fs[@]}"
rc=$?; row "fewshot.py ${fs[*]}" "$([[ $rc == 0 ]] && echo ok || echo "FAILED (rc $rc)")" "$(grep -E '^(speed-up, end to end|float32 vs float64)' "$LOGS/fewshot.log" | tr '\n' ';' | cut -c1-300)"

# 5. the paper profile: 200 steps, time per step and peak memory, extrapolated to the paper's 50,000
if ((QUICK)); then pp=(3 4 16); else pp=(200 100 64); fi   # steps, batch, width
step paper_profile 150 "$PY" - "$DEVICE" "${pp[@]}" "$LOGS/paper_run" <<'EOF'
import csv, shutil, sys, time, torch
from mtslvr.pretrain import PretrainConfig, pretrain
device, steps, batch, width, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
shutil.rmtree(out, ignore_errors=True)
c = PretrainConfig.profile("paper", variant="mt_parallel", steps=steps, batch_size=batch, width=width, device=device,
                           val_every=0, checkpoint_every=steps, log_every=max(1, steps // 10), out_dir=out)
if device == "cuda": torch.cuda.reset_peak_memory_stats()
t0 = time.perf_counter(); r = pretrain(c, progress=False); wall = time.perf_counter() - t0
rows = list(csv.DictReader(open(r["metrics"])))
# seconds per step after the first logged row (start-up, cuDNN autotuning and the first batches excluded)
(s0, t_0), (s1, t_1) = [(int(rows[i]["step"]), float(rows[i]["seconds"])) for i in (0, -1)]
per = (t_1 - t_0) / max(1, s1 - s0) if s1 > s0 else wall / steps
peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else float("nan")
print(f"paper profile (mt_parallel, width {width}, batch {batch}, {c.clip_seconds:g} s clips, amp {c.amp}): {steps} steps "
      f"in {wall:.1f} s; {per * 1000:.1f} ms/step; peak GPU memory {peak:.2f} GiB; "
      f"50,000 steps ~ {per * 50000 / 3600:.1f} h (steps only, no validation)")
EOF
rc=$?; row "paper profile ${pp[0]} steps (batch ${pp[1]}, width ${pp[2]})" "$([[ $rc == 0 ]] && echo ok || echo "FAILED (rc $rc)")" "$(grep -E '^paper profile' "$LOGS/paper_profile.log" | cut -d: -f2- | cut -c1-300)"

{
  echo "## gpu_check: $(cat "$LOGS/device.txt")"
  echo
  echo "| check | result | figures |"
  echo "|---|---|---|"
  while IFS=$'\t' read -r a b c; do echo "| $a | $b | ${c//|//} |"; done < "$LOGS/rows.tsv"
} > "$TABLE"
echo; cat "$TABLE"
! grep -q FAILED "$LOGS/rows.tsv"
