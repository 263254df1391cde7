"""Faults in pre-training runs (issue 21): a resume that would change the run, two runs on one folder, damaged
and zero-byte checkpoints, SIGTERM and a job scheduler's signals, files a killed run left half-written. One test
per item of the issue, named after it; each failed on the code before the fix."""
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import warnings
import zipfile
from pathlib import Path

import pytest
import torch

from mtslvr.audio import save_audio
from mtslvr.config import ConfigError
from mtslvr.models import AudioEncoder, ModelFileError
from mtslvr.pretrain import CheckpointError, PretrainConfig, load_checkpoint, lr_factor, pretrain

ROOT = Path(__file__).resolve().parent.parent


class Crash(Exception):
    pass


@pytest.fixture(scope="module")
def pool(tmp_path_factory) -> Path:
    "Twelve short clips: chirps with a little noise."
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
                batch_size=4, steps=6, clip_seconds=0.5, val_every=0, checkpoint_every=2, log_every=1, device="cpu",
                seed=3, lr=1e-3)
    return PretrainConfig(**{**base, **kw})


def crash_at(n):
    def hook(step, objective):
        if step == n: raise Crash()
    return hook


def flip_inside_largest_tensor(path: Path):
    "Flip one byte in the middle of the largest stored tensor: torch still loads the file."
    b = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        big = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)   # tensor storages
    at = big.header_offset + 30 + len(big.filename) + len(big.extra) + big.file_size // 2
    b[at] ^= 0xFF
    path.write_bytes(bytes(b))


def _lr_rows(metrics: Path) -> dict:
    import csv
    with open(metrics) as f:
        return {int(r["step"]): float(r["lr"]) for r in csv.DictReader(f)}


def test_resume_refuses_a_changed_config(pool, tmp_path):
    mine, other, out = tmp_path / "pool", tmp_path / "other", tmp_path / "run"
    shutil.copytree(pool, mine); shutil.copytree(pool, other)
    with pytest.raises(Crash):
        pretrain(tiny(mine, out), on_step=crash_at(5), progress=False)       # checkpoint at step 4
    record = json.loads((out / "config.json").read_text())
    for change, said in [(dict(lr=5e-4), "lr: 0.001 in the run, 0.0005 now; lr may change only after a non-finite loss"),
                         (dict(batch_size=8, seed=4), "batch_size: 4 in the run, 8 now; seed: 3 in the run, 4 now"),
                         (dict(val_every=3), "val_every: 0 in the run, 3 now"),
                         (dict(data=str(other)), f"data: {str(mine)!r} in the run, {str(other)!r} now")]:
        with pytest.raises(ConfigError, match="cannot resume with other settings") as e:
            pretrain(tiny(mine, out, resume=True, **change), progress=False)
        assert said in str(e.value) and "--set resume=true" in str(e.value), str(e.value)
    (mine / "clip03.flac").rename(tmp_path / "clip03.flac")                   # the run's pool, one file removed
    with pytest.raises(ConfigError, match=r"pool of clips changed since the run started \(12 clips then, 11 now"):
        pretrain(tiny(mine, out, resume=True), progress=False)
    (tmp_path / "clip03.flac").rename(mine / "clip03.flac")
    assert json.loads((out / "config.json").read_text()) == record               # refused resumes changed nothing
    # the allow-list: more steps; the steps already run keep their learning rates, the rest is said and recorded
    before = _lr_rows(out / "metrics.csv")
    res = pretrain(tiny(mine, out, resume=True, steps=8), progress=False)
    assert res["steps"] == 8
    after, c8 = _lr_rows(out / "metrics.csv"), tiny(mine, out, steps=8)
    assert {s: after[s] for s in range(1, 5)} == {s: before[s] for s in range(1, 5)}
    for s in range(5, 9):   # the lr logged after step s is the one of step s + 1: base * lr_factor(s, the new config)
        assert after[s] == pytest.approx(1e-3 * lr_factor(s, c8), rel=1e-5)
    segs = json.loads((out / "config.json").read_text())["segments"]
    assert [s["start_step"] for s in segs] == [0, 4] and segs[0]["config"]["steps"] == 6 and segs[1]["config"]["steps"] == 8
    assert segs[1]["changes"] == {"steps": [6, 8]} and "steps 6 -> 8: steps 1..4 ran with the learning rates of steps=6" in segs[1]["note"]
    assert segs[1]["end"] == {"step": 8, "reason": "finished"} and "end" not in segs[0]   # the crash left no end


def test_resume_after_a_non_finite_loss_takes_a_lower_lr(pool, tmp_path):
    out = tmp_path / "nan"
    def poison_at_3(step, objective):
        if step == 3:
            with torch.no_grad(): next(objective.parameters()).fill_(float("nan"))
    from mtslvr.losses import NonFiniteLossError
    with pytest.raises(NonFiniteLossError, match=r"--set lr=SMALLER --set resume=true"):
        pretrain(tiny(pool, out), on_step=poison_at_3, progress=False)
    assert json.loads((out / "config.json").read_text())["segments"][-1]["end"]["reason"] == "non-finite loss"
    res = pretrain(tiny(pool, out, resume=True, lr=1e-4), progress=False)       # allowed now: the lr really changes
    assert res["steps"] == 6
    lrs, c = _lr_rows(out / "metrics.csv"), tiny(pool, out, lr=1e-4)
    assert lrs[3] == pytest.approx(1e-4 * lr_factor(3, c), rel=1e-5) and lrs[2] == pytest.approx(1e-3 * lr_factor(2, c), rel=1e-5)
    ck = load_checkpoint(out / "checkpoints" / "last.pt")
    assert ck["optimizer"]["param_groups"][0]["initial_lr"] == 1e-4 and ck["scheduler"]["base_lrs"][0] == 1e-4
    with pytest.raises(ConfigError, match="lr may change only after a non-finite loss"):   # the run has finished since
        pretrain(tiny(pool, out, resume=True, lr=1e-5), progress=False)


def test_a_second_run_on_a_locked_folder_fails_at_once(pool, tmp_path):
    out = tmp_path / "busy"
    seen = []
    def second_run_at_2(step, objective):
        if step == 2:
            with pytest.raises(BlockingIOError) as e:
                pretrain(tiny(pool, out, resume=True), progress=False)
            seen.append(str(e.value))
    pretrain(tiny(pool, out, steps=3), on_step=second_run_at_2, progress=False)
    assert f"in use by another pre-training (process {os.getpid()} on" in seen[0] and "choose another out_dir" in seen[0]
    assert not (out / ".lock").exists()                                          # released when the run ended
    # a run killed with SIGKILL leaves the folder free: the lock is the kernel's, not a pid file
    script = textwrap.dedent(f"""
        import sys, time
        from mtslvr.pretrain import PretrainConfig, pretrain
        c = PretrainConfig.load({str(out / 'config.json')!r}, {{"resume": True, "steps": 50}})
        def hold(step, objective):
            if step == 4: print("holding", flush=True); time.sleep(120)
        pretrain(c, on_step=hold, progress=False)
    """)
    p = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        while (line := p.stdout.readline()) and line.strip() != "holding": pass   # (after the resume's own message)
        assert line.strip() == "holding"
        with pytest.raises(BlockingIOError, match=f"in use by another pre-training .process {p.pid} on"):
            pretrain(tiny(pool, out, resume=True, steps=50), progress=False)
    finally:
        p.send_signal(signal.SIGKILL); p.wait()
    res = pretrain(tiny(pool, out, resume=True, steps=5), progress=False)
    assert res["steps"] == 5


def test_corruption_is_detected_by_checksums(pool, tmp_path):
    out = tmp_path / "r"
    res = pretrain(tiny(pool, out, steps=2), progress=False)
    last, enc = out / "checkpoints" / "last.pt", res["encoder"]
    flip_inside_largest_tensor(last)
    torch.load(last, weights_only=True)                                         # torch alone does not notice
    with pytest.raises(CheckpointError, match=f"{last}: checksum mismatch"):
        pretrain(tiny(pool, out, steps=4, resume=True), progress=False)
    assert res["encoder_sha256"] == torch.load(enc, weights_only=True)["sha256"]
    flip_inside_largest_tensor(enc)
    with pytest.raises(ModelFileError, match=f"{enc}: checksum mismatch"):
        AudioEncoder.load(enc)
    from mtslvr.cli import main
    assert main(["evaluate", str(enc), "--set", f"out_dir={tmp_path / 'e'}", "--quiet"]) == 1
    # files written before checksums existed load, saying so once; evaluation records each encoder's checksum
    from mtslvr.config import ChecksumWarning
    old = tmp_path / "old.pt"
    torch.save({k: v for k, v in torch.load(ROOT / "tests" / "fixtures" / "mtslvr_v1_mt_parallel.pt", weights_only=True).items()
                if k != "sha256"}, old)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("default")
        AudioEncoder.load(old); AudioEncoder.load(old)
    assert [str(x.message).split(":")[0] for x in w if x.category is ChecksumWarning] == [str(old)]
    good = AudioEncoder.load(pretrain(tiny(pool, tmp_path / "g", steps=1), progress=False)["encoder"])
    from mtslvr.evaluate import EvalConfig, run_evaluation
    r = run_evaluation(EvalConfig(encoders=(str(tmp_path / "g" / "encoder.pt"),), random_init=False, sets=("keywords",),
                                  shots=(1,), n_tasks=5, out_dir=str(tmp_path / "ev"), device="cpu"), progress=False, out=lambda *a: None)
    assert r["summary"]["encoders"]["g"]["sha256"] == good.sha256 is not None
    saved = json.loads((tmp_path / "ev" / "results.json").read_text())["encoders"]["g"]
    assert saved["sha256"] == good.sha256 and len(saved["file_sha256"]) == 64


def test_a_zero_byte_checkpoint_is_a_clear_error(pool, tmp_path, capsys):
    out = tmp_path / "z"
    pretrain(tiny(pool, out, steps=2), progress=False)
    (out / "checkpoints" / "last.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="last.pt: empty file .0 bytes., not a checkpoint: copy checkpoints/best.pt"):
        pretrain(tiny(pool, out, steps=4, resume=True), progress=False)
    from mtslvr.cli import main
    (tmp_path / "run.json").write_text(json.dumps(tiny(pool, out, steps=4, resume=True).to_dict()))
    assert main(["pretrain", "--config", str(tmp_path / "run.json"), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "empty file (0 bytes)" in err and "Traceback" not in err


def test_sigterm_checkpoints_at_the_next_step_boundary(pool, tmp_path):
    "The command line as Slurm or `timeout` stops it: SIGTERM in step 3; the fault is injected at a chosen step."
    out = tmp_path / "t"
    cfg = tiny(pool, out, checkpoint_every=100)
    (tmp_path / "run.json").write_text(json.dumps(cfg.to_dict()))
    script = textwrap.dedent(f"""
        import os, signal, sys
        import mtslvr.pretrain as P
        from mtslvr.cli import main
        run = P.pretrain
        def sigterm_at_3(step, objective):
            if step == 3: os.kill(os.getpid(), signal.SIGTERM)
        P.pretrain = lambda c, progress=True: run(c, on_step=sigterm_at_3, progress=progress)
        sys.exit(main(["pretrain", "--config", {str(tmp_path / 'run.json')!r}, "--quiet"]))
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert r.returncode == 130, r.stderr
    assert (f"mtslvr pretrain: stopped at step 3 of 6 (SIGTERM); checkpoint {out / 'checkpoints' / 'last.pt'}. To continue: "
            "the same command with --set resume=true") in r.stderr
    assert load_checkpoint(out / "checkpoints" / "last.pt")["state"]["step"] == 3   # not the periodic one (none yet)
    assert json.loads((out / "config.json").read_text())["segments"][-1]["end"] == {"step": 3, "reason": "stopped (SIGTERM)"}
    resumed = pretrain(cfg.replace(resume=True), progress=False)
    whole = pretrain(cfg.replace(out_dir=str(tmp_path / "whole")), progress=False)
    a, b = (AudioEncoder.load(x["encoder"]).state_dict() for x in (resumed, whole))
    assert all(torch.equal(a[k], b[k]) for k in a)                                 # and the run continues exactly


def test_a_job_schedulers_signal_handlers_are_left_in_place(pool, tmp_path):
    "Inside a submitit job: its SIGUSR2 handler calls the callable's checkpoint hook; SIGTERM is only logged."
    from mtslvr.pretrain import request_checkpoint
    from mtslvr.resume import StopRequested
    calls = []
    def preempted(signum, frame):           # submitit: checkpoint() of the callable, then requeue and exit
        calls.append(("SIGUSR2", request_checkpoint(stop=True, why="preempted")))
    def bypass(signum, frame): calls.append(("SIGTERM", None))   # submitit logs SIGTERM and goes on
    old = signal.signal(signal.SIGUSR2, preempted), signal.signal(signal.SIGTERM, bypass)
    try:
        def signals(step, objective):
            if step == 2: os.kill(os.getpid(), signal.SIGTERM)
            if step == 4: os.kill(os.getpid(), signal.SIGUSR2)
        with pytest.raises(StopRequested, match="stopped at step 4 of 6 .preempted."):
            pretrain(tiny(pool, tmp_path / "j", checkpoint_every=100), on_step=signals, progress=False)
        assert calls == [("SIGTERM", None), ("SIGUSR2", True)]   # each handler ran once; the hook wrote the checkpoint
        assert signal.getsignal(signal.SIGUSR2) is preempted and signal.getsignal(signal.SIGTERM) is bypass
        assert load_checkpoint(tmp_path / "j" / "checkpoints" / "last.pt")["state"]["step"] == 4
    finally:
        signal.signal(signal.SIGUSR2, old[0]); signal.signal(signal.SIGTERM, old[1])


def test_partial_files_are_cleaned_at_the_next_start(pool, tmp_path, monkeypatch):
    out = tmp_path / "p"
    pretrain(tiny(pool, out, steps=2), progress=False)
    left = [out / "checkpoints" / ".last.pt.tmp4242", out / "checkpoints" / ".best.pt.tmp4243", out / "encoder.pt.tmp",
            out / ".encoder.pt.tmp99"]
    for f in left: f.write_bytes(b"half a file")
    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(os.readlink(f"/proc/self/fd/{fd}")), real(fd))[1])
    pretrain(tiny(pool, out, steps=3, resume=True), progress=False)
    assert not [f for f in left if f.exists()]
    assert any(".encoder.pt.tmp" in s for s in synced), "AudioEncoder.save flushes the file to disk before the rename"



def test_a_submitit_job_resumes_from_the_step_it_was_preempted_at(pool, tmp_path):
    "submitit 1.5.4 itself (its local executor): its handlers stay; the checkpoint is written in its hook; requeued, it resumes."
    import submitit

    class PretrainJob(submitit.helpers.Checkpointable):   # as a study would write it (the pre-training page, Stopping)
        def __call__(self, c):
            def preempted_at_3(step, objective):   # the scheduler's signal at a chosen step (the first attempt only)
                if step == 3 and not c.resume: os.kill(os.getpid(), signal.SIGUSR2)
            return pretrain(c, on_step=preempted_at_3, progress=False)["steps"]

        def checkpoint(self, c):                   # submitit calls it from its SIGUSR2 handler
            from mtslvr.pretrain import request_checkpoint
            Path(c.out_dir, "hook.txt").write_text(str(request_checkpoint(stop=True, why="preempted")))
            return submitit.helpers.DelayedSubmission(self, c.replace(resume=True))

    c = tiny(pool, tmp_path / "run", checkpoint_every=100)
    ex = submitit.LocalExecutor(folder=str(tmp_path / "jobs"))
    ex.update_parameters(timeout_min=5)
    assert ex.submit(PretrainJob(), c).result() == 6
    assert (tmp_path / "run" / "hook.txt").read_text() == "True"     # written at the boundary, before submitit exited
    segs = json.loads((tmp_path / "run" / "config.json").read_text())["segments"]
    assert [(s["start_step"], s["end"]["step"]) for s in segs] == [(0, 3), (3, 6)]
    assert segs[0]["end"]["reason"].startswith("exited (SystemExit")
