"""A short `mtslvr pretrain` (or `mtslvr demo`) idle and beside a process that keeps one core busy, with OpenMP's
threads waiting passively (what the command sets unless the user sets OMP_WAIT_POLICY), as before (no policy set:
libgomp spins about 3 ms, GOMP_SPINCOUNT=300000, before it sleeps), and actively (they spin; beside a busy process
the peer a thread waits for is descheduled). `--policies` picks others, e.g. PASSIVE:10000 (passive after a short spin).

Shared machines (CI runners, cluster nodes, laptops) are the normal case: a run must not slow down much more than
the share of the machine it lost (about 2x on 2 cores with one taken). Every run here uses the same thread count,
so the results must be the same bits in every condition: the script checks the encoders' checksums.

Prints the wall-clock seconds of each run, the slow-down loaded/idle per policy, and loaded-active/loaded-passive.
Asserts no timing. Run from the repository root:

  PYTHONPATH=$PWD .venv/bin/python benchmarks/load.py                    # pretrain, 30 steps, all cores
  PYTHONPATH=$PWD .venv/bin/python benchmarks/load.py --what demo --steps 4 --repeats 1
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch


def burner() -> subprocess.Popen:
    "Another process that keeps one core busy (pure Python: no OpenMP of its own)."
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


POLICIES = {"PASSIVE": {}, "before": {"GOMP_SPINCOUNT": "300000"}, "ACTIVE": {"OMP_WAIT_POLICY": "ACTIVE"}}

def policy_env(name: str) -> dict:
    "The environment of a policy: a name of `POLICIES`, or POLICY:SPINCOUNT."
    if name in POLICIES: return POLICIES[name]
    pol, _, spin = name.partition(":")
    return {"OMP_WAIT_POLICY": pol, **({"GOMP_SPINCOUNT": spin} if spin else {})}

def run(what: str, steps: int, threads: int, policy: str, out: Path) -> tuple[float, str]:
    "(wall-clock seconds, a checksum of the weights of the encoder it wrote) of one command in a fresh process."
    drop = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS", "MTSLVR_TORCH_THREADS")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    # PASSIVE: the command's own default; "before": what libgomp does with no policy set (the command now sets one)
    env.update(MTSLVR_TORCH_THREADS=str(threads), OMP_NUM_THREADS=str(threads), **policy_env(policy))
    if what == "pretrain":
        args = ["pretrain", "--quiet", "--set", f"out_dir={out}", "--set", f"steps={steps}", "--set", "width=8",
                "--set", "out_dim=64", "--set", "batch_size=16", "--set", "val_every=0", "--set", "device=cpu"]
        enc = out / "encoder.pt"
    else:
        args = ["demo", "--quiet", "--out", str(out), "--steps", str(steps), "--tasks", "50", "--variants", "cont_only,mt_parallel"]
        enc = out / "models" / "mt_parallel-simclr" / "encoder.pt"
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "mtslvr.cli", *args], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if r.returncode: raise SystemExit(f"mtslvr {what} failed ({r.returncode}):\n{r.stderr[-2000:]}")
    from mtslvr.config import payload_sha256
    return seconds, payload_sha256(torch.load(enc, weights_only=True)["state_dict"])   # the weights (the config names out_dir)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--what", choices=("pretrain", "demo"), default="pretrain")
    ap.add_argument("--steps", type=int, default=30, help="pre-training steps (default 30)")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads of the run (default: all cores)")
    ap.add_argument("--repeats", type=int, default=2, help="runs per condition; the fastest counts (default 2)")
    ap.add_argument("--policies", default="PASSIVE,before,ACTIVE", help="comma-separated: PASSIVE, before, ACTIVE or POLICY:SPINCOUNT")
    a = ap.parse_args(argv)
    print(f"{a.what}, {a.steps} steps, {a.threads} threads, {os.cpu_count()} cores; load average before: "
          f"{os.getloadavg()[0]:.2f}")
    times, sums, policies = {}, set(), a.policies.split(",")
    with tempfile.TemporaryDirectory() as d:
        for loaded in (False, True):
            b = burner() if loaded else None
            try:
                for policy in policies:
                    best = []
                    for i in range(a.repeats):
                        s, h = run(a.what, a.steps, a.threads, policy, Path(d) / f"{loaded}-{policy}-{i}")
                        best.append(s); sums.add(h)
                    times[loaded, policy] = min(best)
                    print(f"  {'beside a busy process' if loaded else 'idle':<22} {policy:<14} "
                          f"{times[loaded, policy]:7.1f} s  (runs: {', '.join(f'{x:.1f}' for x in best)})")
            finally:
                if b is not None: b.kill(); b.wait()
    print()
    for policy in policies:
        print(f"{policy:<14} slow-down beside a busy process {times[True, policy] / times[False, policy]:5.2f}x; "
              f"against {policies[0]}: idle {times[False, policy] / times[False, policies[0]]:.2f}x, "
              f"loaded {times[True, policy] / times[True, policies[0]]:.2f}x")
    print(f"results bit-identical in every condition: {len(sums) == 1} (weights' checksums: {len(sums)} distinct)")
    print(json.dumps({f"{'loaded' if k[0] else 'idle'}-{k[1]}": round(v, 2) for k, v in times.items()}))


if __name__ == "__main__":
    main()
