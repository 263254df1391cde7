"""Pre-training with DDP on 2 CPU processes (gloo): identical parameters on both ranks, files written
by rank 0 only, a resumed 2-process run, and the torchrun command line."""
import csv
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from mtslvr.audio import save_audio
from mtslvr.pretrain import PretrainConfig, load_checkpoint, pretrain


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def pool(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("pool")
    g = torch.Generator().manual_seed(0)
    for i in range(10):
        n = 8000 + 800 * i
        t = torch.arange(n) / 16000
        save_audio(d / f"c{i}.flac", (0.3 * torch.sin(2 * torch.pi * (180 + 70 * i) * t) + 0.05 * torch.randn(n, generator=g)).clamp(-1, 1))
    return d


def _config(pool, out, **kw):
    base = dict(data=str(pool), out_dir=str(out), variant="mt_split", width=4, depths=(1, 1, 1, 1), out_dim=16,
                batch_size=4, steps=4, clip_seconds=0.5, val_fraction=0.2, val_every=2, val_batches=1,
                checkpoint_every=2, log_every=1, device="cpu", seed=5)
    base.update(kw)
    return PretrainConfig(**base)


def _worker(rank, world, port, cfg_kw, dump_dir, crash_at):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)

    def hook(step, objective):
        torch.save({k: v.detach().clone() for k, v in objective.state_dict().items()}, Path(dump_dir) / f"rank{rank}_step{step}.pt")
        if step == crash_at:
            raise RuntimeError(f"simulated crash at step {step}")
    pretrain(PretrainConfig(**cfg_kw), on_step=hook, progress=False)


def _spawn(cfg, dump_dir, crash_at=0):
    import dataclasses
    kw = dataclasses.asdict(cfg)
    mp.start_processes(_worker, args=(2, _free_port(), kw, str(dump_dir), crash_at), nprocs=2, join=True, start_method="spawn")


def test_two_ranks_stay_identical_and_only_rank0_writes(pool, tmp_path):
    dumps = tmp_path / "dumps"; dumps.mkdir()
    _spawn(_config(pool, tmp_path / "run"), dumps)
    for step in (1, 4):
        a = torch.load(dumps / f"rank0_step{step}.pt", weights_only=True)
        b = torch.load(dumps / f"rank1_step{step}.pt", weights_only=True)
        params = [k for k in a if "running" not in k and "num_batches" not in k]  # BN statistics are per rank
        assert all(torch.equal(a[k], b[k]) for k in params), step
    with open(tmp_path / "run" / "metrics.csv") as f:
        steps = [int(r["step"]) for r in csv.DictReader(f)]
    assert steps == [1, 2, 3, 4]  # one writer: no duplicated rows
    meta = (tmp_path / "run" / "config.json").read_text()
    assert '"world_size": 2' in meta
    assert (tmp_path / "run" / "encoder.pt").exists()


def test_two_process_run_resumes_exactly(pool, tmp_path):
    dumps = tmp_path / "dumps"; dumps.mkdir()
    _spawn(_config(pool, tmp_path / "ref"), dumps)
    with pytest.raises(Exception, match="simulated crash"):
        _spawn(_config(pool, tmp_path / "run"), dumps, crash_at=3)
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["state"]["step"] == 2
    _spawn(_config(pool, tmp_path / "run", resume=True), dumps)
    ref = load_checkpoint(tmp_path / "ref" / "checkpoints" / "last.pt")
    run = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert run["state"]["step"] == 4
    assert all(torch.equal(ref["objective"][k], run["objective"][k]) for k in ref["objective"])


def test_torchrun_command_line(pool, tmp_path):
    torchrun = Path(sys.executable).parent / "torchrun"
    r = subprocess.run([str(torchrun), "--standalone", "--nproc-per-node", "2", "-m", "mtslvr.cli", "pretrain", "--quiet",
                        "--set", f"data={pool}", "--set", f"out_dir={tmp_path / 'out'}", "--set", "width=4",
                        "--set", "depths=1,1,1,1", "--set", "out_dim=16", "--set", "batch_size=4", "--set", "steps=2",
                        "--set", "clip_seconds=0.5", "--set", "val_every=0", "--set", "device=cpu"],
                       capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("encoder:") == 1  # rank 0 reports
    assert (tmp_path / "out" / "encoder.pt").exists()
