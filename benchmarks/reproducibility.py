"""Where do `mtslvr demo` runs differ? A short demo (pre-train -> evaluate -> invariance) under several CPU settings,
compared with the first: encoder weights (sha256 of every tensor), few-shot tables and findings.

    .venv/bin/python benchmarks/reproducibility.py                 # all conditions
    .venv/bin/python benchmarks/reproducibility.py --steps 5 --tasks 50 --conditions threads1,threads2
Conditions: threads1, threads2 (MTSLVR_TORCH_THREADS), mkldnn_off (torch.backends.mkldnn disabled),
isa_default / isa_avx2 / isa_avx512 (ATEN_CPU_CAPABILITY), burner (threads2 beside a CPU-burning process).
"""
import argparse, hashlib, json, os, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONDITIONS = {
    "threads1": dict(MTSLVR_TORCH_THREADS="1"),
    "threads2": dict(MTSLVR_TORCH_THREADS="2"),
    "mkldnn_off": dict(MTSLVR_TORCH_THREADS="1", MTSLVR_TEST_MKLDNN="0"),
    "isa_default": dict(MTSLVR_TORCH_THREADS="1", ATEN_CPU_CAPABILITY="default"),
    "isa_avx2": dict(MTSLVR_TORCH_THREADS="1", ATEN_CPU_CAPABILITY="avx2"),
    "isa_avx512": dict(MTSLVR_TORCH_THREADS="1", ATEN_CPU_CAPABILITY="avx512"),
    "burner": dict(MTSLVR_TORCH_THREADS="2"),
}
RUNNER = r"""
import os, sys, torch
if os.environ.get("MTSLVR_TEST_MKLDNN") == "0": torch.backends.mkldnn.enabled = False
from mtslvr.cli import main
sys.exit(main(sys.argv[1:]))
"""


def run(out: Path, steps: int, tasks: int, env: dict, burner: bool) -> float:
    e = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": env.get("MTSLVR_TORCH_THREADS", "1"), **env}
    b = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if burner else None
    t = time.perf_counter()
    try:
        subprocess.run([sys.executable, "-c", RUNNER, "demo", "--out", str(out), "--steps", str(steps), "--tasks", str(tasks),
                        "--variants", "cont_only,mt_parallel", "--clips", "4", "--values", "2", "--quiet"],
                       env=e, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    finally:
        if b: b.kill(); b.wait()
    return time.perf_counter() - t


def fingerprint(out: Path) -> dict:
    import torch
    w = {}
    for p in sorted(out.glob("models/*/encoder.pt")):
        h, n = hashlib.sha256(), 0
        def walk(o, key=""):   # every tensor in the file, in key order
            nonlocal n
            if torch.is_tensor(o): h.update(key.encode()); h.update(o.detach().cpu().contiguous().numpy().tobytes()); n += 1
            elif isinstance(o, dict): [walk(o[k], f"{key}/{k}") for k in sorted(o, key=str)]
            elif isinstance(o, (list, tuple)): [walk(v, f"{key}/{i}") for i, v in enumerate(o)]
        walk(torch.load(p, weights_only=True, map_location="cpu"))
        if n == 0: raise SystemExit(f"{p}: no tensors found")
        w[p.parent.name] = h.hexdigest()[:16]
    s = json.loads((out / "summary.json").read_text())
    tables = {p.name: p.read_text() for p in sorted(out.glob("*.md"))}
    return dict(weights=w, tables=tables, findings=s["findings"], env={k: s["environment"].get(k) for k in ("torch_threads", "cpu_capability")})


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=10); ap.add_argument("--tasks", type=int, default=100)
    ap.add_argument("--conditions", default=",".join(CONDITIONS))
    a = ap.parse_args(argv)
    names = a.conditions.split(",")
    with tempfile.TemporaryDirectory() as d:
        fps, secs = {}, {}
        for n in names:
            secs[n] = run(Path(d) / n, a.steps, a.tasks, CONDITIONS[n], n == "burner")
            fps[n] = fingerprint(Path(d) / n)
        ref = fps[names[0]]
        print(f"{a.steps} steps, {a.tasks} tasks; reference: {names[0]}")
        print("| condition | seconds | weights | tables | findings | env |\n|---|---|---|---|---|---|")
        for n in names:
            f = fps[n]
            same = lambda k: "same" if f[k] == ref[k] else "DIFFER"
            wd = "same" if f["weights"] == ref["weights"] else "DIFFER (" + ", ".join(m for m in f["weights"] if f["weights"][m] != ref["weights"].get(m)) + ")"
            print(f"| {n} | {secs[n]:.0f} | {wd} | {same('tables')} | {same('findings')} | {f['env']} |")
            if f["tables"] != ref["tables"]:
                import difflib
                for t in f["tables"]:
                    if f["tables"][t] != ref["tables"].get(t):
                        print("\n".join(l for l in difflib.unified_diff(ref["tables"][t].splitlines(), f["tables"][t].splitlines(), t, n, lineterm="", n=0) if l[:1] in "+-" and l[:3] not in ("+++", "---")))


if __name__ == "__main__":
    main()
