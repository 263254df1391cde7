"""The commands under faults (issue 21): zero that means zero, one rule for every run folder, OS errors as one
line before any heavy work, and a machine shared with another busy process. One test per item of the issue,
named after it; each failed on the code before the fix."""
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
import torch

from mtslvr.audio import save_audio
from mtslvr.cli import main

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def encoder(tmp_path_factory) -> Path:
    "A tiny saved encoder (random weights, fitted to nothing: what matters here is the file)."
    from mtslvr.frontend import Spectrogram3C
    from mtslvr.models import AudioEncoder, build_encoder
    torch.manual_seed(0)
    m = AudioEncoder(Spectrogram3C(), build_encoder("mt_split", width=4, depths=(1, 1, 1, 1), out_dim=16))
    return m.save(tmp_path_factory.mktemp("enc") / "tiny" / "encoder.pt")


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    "One small labelled set: 5 classes of 4 clips of 0.5 s, pieces of 0.25 s."
    root = tmp_path_factory.mktemp("toy")
    for k in range(5):
        for i in range(4):
            t = torch.arange(8000) / 16000
            save_audio(root / "audio" / f"c{k}" / f"{i}.flac", 0.3 * torch.sin(2 * torch.pi * (200 + 60 * k + 7 * i) * t))
    (root / "split.json").write_text(json.dumps(dict(name="toy", train=[], val=[], test=[f"c{k}" for k in range(5)],
                                                     piece_seconds=0.25)))
    return root


def test_zero_means_zero_and_what_was_used_is_recorded(tmp_path, toy, encoder, capsys):
    for flag in ("--steps", "--tasks", "--values"):   # refused at once: no default run in their place
        assert main(["demo", flag, "0", "--data", str(tmp_path / "no-data"), "--out", str(tmp_path / "d"), "--quiet"]) == 2
        assert f"{flag} 0: expected at least 1 (leave it out for the profile's)" in capsys.readouterr().err
    assert main(["demo", "--clips", "1", "--data", str(tmp_path / "no-data"), "--quiet"]) == 2
    assert "--clips 1: expected at least 2" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()
    # more clips asked than the set has: all of them are used, and that is what is said and recorded
    out = tmp_path / "inv"
    assert main(["invariance", str(encoder), "--set", f"data={toy}", "--set", "n_clips=10000", "--set", "n_tasks=0",
                 "--set", "n_values=1", "--set", "seconds=0.25", "--set", f"out_dir={out}", "--set", "device=cpu"]) == 0
    said = capsys.readouterr().out
    n = toy.name
    assert f"invariance: {n} 20 clips of 0.25 s, 1 values per augmentation (n_clips=10000: {n} has fewer; all of them are used)" in said
    s = json.loads((out / "summary.json").read_text())
    assert (s["clips"], s["clips_available"], s["config"]["n_clips"]) == ({n: 20}, {n: 20}, 10000)


def test_one_rule_for_every_run_folder(tmp_path, toy, encoder, capsys):
    ev = ["evaluate", str(encoder), "--set", f"data={toy}", "--set", "shots=1", "--set", "device=cpu", "--quiet"]
    out = tmp_path / "e"
    assert main([*ev, "--set", "n_tasks=5", "--set", f"out_dir={out}"]) == 0
    first = (out / "results.json").read_text()
    assert main([*ev, "--set", "n_tasks=6", "--set", f"out_dir={out}"]) == 2    # another evaluation: refused, named
    err = capsys.readouterr().err
    assert f"{out} holds another evaluation (n_tasks: 5 in the run, 6 now): choose another out_dir" in err, err
    assert (out / "results.json").read_text() == first
    assert main([*ev, "--set", "n_tasks=5", "--set", f"out_dir={out}", "--set", "workers=1"]) == 0   # the same one: again
    # across kinds: a pre-training run's folder is not an evaluation's, and the other way round
    from mtslvr.pretrain import PretrainConfig, pretrain
    c = PretrainConfig(data=str(toy / "audio"), out_dir=str(tmp_path / "p"), width=4, out_dim=16, batch_size=4, steps=1,
                       clip_seconds=0.25, val_every=0, device="cpu")
    pretrain(c, progress=False)
    assert main([*ev, "--set", "n_tasks=5", "--set", f"out_dir={tmp_path / 'p'}"]) == 2
    assert "holds a pre-training run (checkpoints/last.pt): a folder holds one run" in capsys.readouterr().err
    assert main(["pretrain", "--config", str(tmp_path / "p" / "config.json"), "--set", f"out_dir={out}", "--quiet"]) == 2
    assert f"{out} holds another run's results.json" in capsys.readouterr().err
    assert main(["invariance", str(encoder), "--set", f"data={toy}", "--set", f"out_dir={out}", "--quiet"]) == 2
    assert "holds an evaluation (results.json)" in capsys.readouterr().err


def test_os_errors_are_one_line_before_heavy_work(tmp_path, encoder, capsys):
    f = tmp_path / "a-file"
    f.write_text("")
    missing = tmp_path / "missing.pt"   # an error the run would meet only after the folder: the folder comes first
    for cmd in (["pretrain", "--set", "steps=1"], ["evaluate", str(missing), "--set", "cache=false"],
                ["invariance", str(encoder)]):
        for out, said in [(f, f"{f}: is a file, not a folder: choose another out_dir"),
                          (f / "run", f"{f / 'run'}: lies inside {f}, which is a file, not a folder: choose another out_dir")]:
            assert main([*cmd, "--set", f"out_dir={out}", "--quiet"]) == 1, cmd
            err = capsys.readouterr().err
            assert err == f"mtslvr {cmd[0]}: error: {said}\n", err
    # read-only (as another user: root writes anywhere) and a file system that refuses a write (the file-size limit
    # stands in for a full disk: the same failed write); the commands run in processes of their own
    ro = Path(tempfile.mkdtemp()); os.chmod(ro, 0o755)
    try:
        script = textwrap.dedent(f"""
            import os, resource, signal, sys
            import mtslvr.cli, mtslvr.pretrain, tqdm.auto
            mtslvr.cli.build_parser()   # (its imports, before this process may no longer read the Python installation)
            if sys.argv[1] == "read-only" and os.geteuid() == 0: os.setgid(65534); os.setuid(65534)
            if sys.argv[1] == "full":   # writes past 2 kB fail (EFBIG) instead of killing the process
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN); resource.setrlimit(resource.RLIMIT_FSIZE, (2048, 2048))
            sys.exit(mtslvr.cli.main(["pretrain", "--set", "out_dir={ro / 'run'}", "--set", "steps=1", "--quiet"]))
        """)
        for case, said in [("read-only", f"{ro / 'run'}: cannot create the folder (Permission denied): choose another out_dir"),
                           ("full", f"{ro / 'run'}: cannot write in the folder (File too large): choose another out_dir")]:
            r = subprocess.run([sys.executable, "-c", script, case], capture_output=True, text=True, timeout=120)
            assert (r.returncode, r.stderr) == (1, f"mtslvr pretrain: error: {said}\n"), (case, r.returncode, r.stderr)
    finally:
        import shutil; shutil.rmtree(ro)


def test_commands_do_not_slow_down_beside_a_busy_process():
    "OpenMP threads must wait passively (spinning beside a busy process made runs 5-18x slower; benchmarks/load.py)."
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    probe = "import os, mtslvr.cli, torch; print(os.environ.get('OMP_WAIT_POLICY'))"
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120)
    assert r.stdout.strip() == "PASSIVE", r.stderr                              # set before torch starts OpenMP
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env={**env, "OMP_WAIT_POLICY": "ACTIVE"},
                       timeout=120)
    assert r.stdout.strip() == "ACTIVE"                                         # a value the user set wins
    assert "export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}" in (ROOT / "scripts" / "run_tests.sh").read_text()
