"""Pre-training end to end on a tiny synthetic pool: exact resume after a crash, a NaN loss that keeps
the last good checkpoint, refusing to overwrite a run, and the `mtslvr pretrain` command."""
import csv
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mtslvr.audio import save_audio
from mtslvr.losses import NonFiniteLossError
from mtslvr.models import AudioEncoder
from mtslvr.pretrain import CheckpointError, ConfigError, PretrainConfig, load_checkpoint, pretrain


class Crash(Exception):
    pass


@pytest.fixture(scope="module")
def pool(tmp_path_factory) -> Path:
    "Twelve short clips: tones, chirps and noise bursts of different lengths."
    d = tmp_path_factory.mktemp("pool")
    g = torch.Generator().manual_seed(0)
    for i in range(12):
        n = 8000 + 1000 * i
        t = torch.arange(n) / 16000
        x = 0.3 * torch.sin(2 * torch.pi * (150 + 60 * i) * t * (1 + 0.3 * t)) + 0.05 * torch.randn(n, generator=g)
        save_audio(d / f"clip{i:02d}.flac", x.clamp(-1, 1))
    return d


def tiny(pool, out, **kw) -> PretrainConfig:
    base = dict(data=str(pool), out_dir=str(out), variant="mt_parallel", width=4, depths=(1, 1, 1, 1), out_dim=16,
                batch_size=4, steps=6, clip_seconds=0.5, val_fraction=0.25, val_every=3, val_batches=1,
                checkpoint_every=2, log_every=1, device="cpu", workers=0, seed=3)
    base.update(kw)
    return PretrainConfig(**base)


def _metrics(path):
    with open(path) as f:
        return [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(f)]


def test_resume_after_a_crash_is_bit_identical(pool, tmp_path):
    ref = pretrain(tiny(pool, tmp_path / "ref"), progress=False)

    def crash_at_5(step, objective):
        if step == 5:
            raise Crash()
    with pytest.raises(Crash):
        pretrain(tiny(pool, tmp_path / "run"), on_step=crash_at_5, progress=False)
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["state"]["step"] == 4
    res = pretrain(tiny(pool, tmp_path / "run", resume=True), progress=False)
    assert res["steps"] == 6
    a = load_checkpoint(tmp_path / "ref" / "checkpoints" / "last.pt")
    b = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    for k, v in a["objective"].items():
        assert torch.equal(v, b["objective"][k]), k
    assert a["state"] == b["state"]
    assert _metrics(ref["metrics"]) == _metrics(res["metrics"])  # the crashed run's extra rows were dropped
    ea, eb = AudioEncoder.load(ref["encoder"]), AudioEncoder.load(res["encoder"])
    x = torch.randn(2, 8000, generator=torch.Generator().manual_seed(1))
    assert torch.equal(ea.embed(x), eb.embed(x))


def test_same_seed_same_run_and_other_seed_differs(pool, tmp_path):
    a = pretrain(tiny(pool, tmp_path / "a", steps=2, val_every=0), progress=False)
    b = pretrain(tiny(pool, tmp_path / "b", steps=2, val_every=0), progress=False)
    c = pretrain(tiny(pool, tmp_path / "c", steps=2, val_every=0, seed=4), progress=False)
    sa, sb, sc = (AudioEncoder.load(r["encoder"]).state_dict() for r in (a, b, c))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(pool, tmp_path):
    def poison_at_3(step, objective):
        if step == 3:
            with torch.no_grad():
                next(objective.parameters()).fill_(float("nan"))
    with pytest.raises(NonFiniteLossError, match="last good checkpoint"):
        pretrain(tiny(pool, tmp_path / "nan", val_every=0), on_step=poison_at_3, progress=False)
    ck = load_checkpoint(tmp_path / "nan" / "checkpoints" / "last.pt")
    assert ck["state"]["step"] == 2
    assert all(torch.isfinite(v).all() for v in ck["objective"].values() if v.is_floating_point())
    assert not (tmp_path / "nan" / "encoder.pt").exists()


def test_an_existing_run_is_never_overwritten(pool, tmp_path):
    pretrain(tiny(pool, tmp_path / "r", steps=2, val_every=0), progress=False)
    before = (tmp_path / "r" / "checkpoints" / "last.pt").read_bytes()
    with pytest.raises(ConfigError, match="already holds a run"):
        pretrain(tiny(pool, tmp_path / "r", steps=2, val_every=0), progress=False)
    assert (tmp_path / "r" / "checkpoints" / "last.pt").read_bytes() == before
    with pytest.raises(CheckpointError, match="different model.*width"):
        pretrain(tiny(pool, tmp_path / "r", steps=4, val_every=0, width=8, resume=True), progress=False)
    with pytest.raises(CheckpointError, match="no checkpoint to resume from"):
        pretrain(tiny(pool, tmp_path / "new", resume=True), progress=False)


def test_run_folder_records_config_and_versions(pool, tmp_path):
    import json
    res = pretrain(tiny(pool, tmp_path / "r", steps=2, val_every=0), progress=False)
    meta = json.loads((tmp_path / "r" / "config.json").read_text())
    assert meta["config"]["variant"] == "mt_parallel" and meta["environment"]["torch"] == torch.__version__
    enc = AudioEncoder.load(res["encoder"])
    assert enc.config["variant"] == "mt_parallel"
    assert enc.embed(torch.zeros(1, 8000)).shape == (1, 16)


def test_cli_pretrain_and_its_errors(pool, tmp_path):
    exe = Path(sys.executable).parent / "mtslvr"
    (tmp_path / "run.yaml").write_text(f"data: {pool}\nwidth: 4\ndepths: [1, 1, 1, 1]\nout_dim: 16\nbatch_size: 4\n"
                                       "clip_seconds: 0.5\nval_every: 0\ndevice: cpu\n")
    r = subprocess.run([str(exe), "pretrain", "--config", str(tmp_path / "run.yaml"), "--set", "steps=2",
                        "--set", f"out_dir={tmp_path / 'out'}", "--quiet"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "encoder:" in r.stdout and (tmp_path / "out" / "encoder.pt").exists()
    r = subprocess.run([str(exe), "pretrain", "--config", str(tmp_path / "run.yaml"), "--set", "lr=fast"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "'lr'" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([str(exe), "pretrain", "--help"], capture_output=True, text=True, timeout=300)
    assert all(f in r.stdout for f in ("variant", "batch_size", "early_stop", "mt_parallel"))


def test_the_paper_profiles_options_train_and_resume_exactly(pool, tmp_path):
    "The authors' run at a tiny size: periodic cosine, global statistics from the pool, full validation passes summed,"
    " early stopping with a delta, their heads, layout and front-end, circular time stretch; resumed bit for bit."
    paper = PretrainConfig.profile("paper").to_dict()
    keep = ("schedule", "val_loss", "early_stop_delta", "heads", "stretch_pad", "waveform_norm", "norm_stats", "encoder_layout",
            "frontend", "mlap_reduction", "amp")
    over = {k: paper[k] for k in keep}
    c = lambda out, **kw: tiny(pool, out, cosine_period=3, val_batches=0, early_stop=2, **over, **kw)
    ref = pretrain(c(tmp_path / "ref"), progress=False)

    def crash_at_5(step, objective):
        if step == 5: raise Crash()
    with pytest.raises(Crash): pretrain(c(tmp_path / "run"), on_step=crash_at_5, progress=False)
    pretrain(c(tmp_path / "run", resume=True), progress=False)
    a, b = (load_checkpoint(p / "checkpoints" / "last.pt") for p in (tmp_path / "ref", tmp_path / "run"))
    assert all(torch.equal(v, b["objective"][k]) for k, v in a["objective"].items())
    mu, sd = a["state"]["norm"]
    assert abs(mu) < 0.05 and 0.01 < sd < 1                     # the pool's own statistics, stored with the run
    import json
    cfg = json.loads((tmp_path / "ref" / "config.json").read_text())
    assert cfg["pool"]["norm"] == [mu, sd] and cfg["config"]["schedule"] == "cosine_periodic"
    lrs = {int(r["step"]): float(r["lr"]) for r in _metrics(ref["metrics"])}   # the rate for the step after each row
    assert lrs[3] == 0.0 and abs(lrs[6] - 5e-5) < 1e-12   # the periodic cosine: zero at T_max = 3, the top again at 6
