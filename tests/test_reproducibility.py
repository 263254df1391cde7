"""Same command + versions + seed + threads = bit-identical: a short demo (pre-train -> evaluate -> invariance) run
twice with 2 torch threads, the second time beside a CPU-burning process; weights, tables and findings compared exactly.
(benchmarks/reproducibility.py measures what does differ: the thread count and the CPU's kernels.)"""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import reproducibility as rp


def test_two_runs_with_two_threads_one_beside_a_cpu_burner_are_bit_identical(tmp_path):
    env = dict(MTSLVR_TORCH_THREADS="2")
    rp.run(tmp_path / "idle", 3, 20, env, burner=False)
    rp.run(tmp_path / "busy", 3, 20, env, burner=True)
    a, b = rp.fingerprint(tmp_path / "idle"), rp.fingerprint(tmp_path / "busy")
    assert len(a["weights"]) == 2 and a["env"]["torch_threads"] == 2
    assert a["weights"] == b["weights"]
    assert a["tables"] == b["tables"] and len(a["tables"]) >= 4
    assert a["findings"] == b["findings"]
