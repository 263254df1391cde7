"""The `mtslvr` command as a user runs it: installed entry point, exit codes and messages."""
import subprocess
import sys
from pathlib import Path

import torch

from mtslvr.audio import save_audio

EXE = Path(sys.executable).parent / "mtslvr"


def run(*args, **kw):
    return subprocess.run([str(EXE), *args], capture_output=True, text=True, timeout=300, **kw)


def test_version_and_help():
    r = run("--version")
    assert r.returncode == 0 and r.stdout.startswith("mtslvr ")
    r = run("demo", "--help")
    assert r.returncode == 0 and "--data" in r.stdout


def test_demo_end_to_end_on_a_tiny_data_root_with_a_bad_file(tmp_path):
    import json
    t = torch.arange(16000) / 16000
    classes = [f"c{i}" for i in range(7)]
    for i, c in enumerate(classes):
        for j in range(6):
            x = 0.3 * torch.sin(2 * torch.pi * (150 * (i + 1) + 20 * j) * t * (1 + 0.2 * t))
            save_audio(tmp_path / "toy" / "audio" / c / f"{j}.flac", x)
    # in a pre-training class: the pool's scan reports and skips it (in a test class it would be an error naming it:
    # evaluation sets are not filtered, see 10b_evaluate)
    (tmp_path / "toy" / "audio" / "c0" / "corrupt.flac").write_bytes(b"fLaC\x00\x01garbage")
    (tmp_path / "toy" / "split.json").write_text(json.dumps(dict(
        name="toy", description="synthetic tones", synthetic=True, sample_rate=16000, piece_seconds=0.5,
        train=classes[:2], val=[], test=classes[2:])))
    r = run("demo", "--data", str(tmp_path), "--out", str(tmp_path / "run"), "--steps", "2", "--tasks", "20", "--clips", "4", "--values", "2", "--quiet")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "corrupt.flac" in r.stderr  # reported once by the scan, and skipped
    for m in ("random init", "cont_only", "pred_only", "mt_simple", "mt_split", "mt_parallel"):
        assert f"| {m} |" in r.stdout
    assert "5-way 1-shot" in r.stdout and "5-way 5-shot" in r.stdout
    assert "Invariance" in r.stdout and "Head weights" in r.stdout and "findings" in r.stdout
    for f in ("fewshot_1shot.csv", "fewshot_5shot.md", "invariance.csv", "head_weights.html", "summary.json", "demo.log"):
        assert (tmp_path / "run" / f).exists(), f


def test_demo_with_a_missing_folder_fails_clearly(tmp_path):
    r = run("demo", "--data", str(tmp_path / "nope"))
    assert r.returncode == 2
    assert "no such data folder" in r.stderr and "Traceback" not in r.stderr


def _metaaudio_split(path):
    import numpy as np
    arr = np.empty(3, dtype=object)
    arr[0], arr[1], arr[2] = np.array(["a", "b", "c"]), np.array(["d"]), np.array(["e", "f"])
    np.save(path, arr, allow_pickle=True)


def test_splits_convert_refuses_pickle_without_opt_in(tmp_path):
    _metaaudio_split(tmp_path / "esc.npy")
    r = run("splits", "convert", str(tmp_path / "esc.npy"), str(tmp_path / "esc.json"))
    assert r.returncode == 2 and "--allow-pickle" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "esc.json").exists()


def test_splits_convert_with_opt_in(tmp_path):
    import json
    _metaaudio_split(tmp_path / "esc.npy")
    r = run("splits", "convert", str(tmp_path / "esc.npy"), str(tmp_path / "esc.json"), "--allow-pickle")
    assert r.returncode == 0, r.stderr
    d = json.loads((tmp_path / "esc.json").read_text())
    assert (d["train"], d["val"], d["test"]) == (["a", "b", "c"], ["d"], ["e", "f"])
    r = run("splits", "convert", str(tmp_path / "esc.npy"), str(tmp_path / "esc.json"), "--allow-pickle")
    assert r.returncode == 2 and "--force" in r.stderr


def _tiny_encoder(path, variant):
    from mtslvr.frontend import Spectrogram3C
    from mtslvr.models import AudioEncoder, build_encoder
    torch.manual_seed(0)
    return AudioEncoder(Spectrogram3C(), build_encoder(variant, width=4, depths=(1, 1, 1, 1), out_dim=16)).save(path)


def test_invariance_on_saved_encoders(tmp_path):
    a = _tiny_encoder(tmp_path / "mt_split-simclr" / "encoder.pt", "mt_split")
    b = _tiny_encoder(tmp_path / "cont.pt", "cont_only")
    r = run("invariance", str(a), str(b), "--set", "sets=keywords", "--set", "n_clips=4", "--set", "seconds=0.5",
            "--set", "n_values=2", "--set", "n_tasks=10", "--set", f"out_dir={tmp_path / 'run'}")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "| PS | FD | WN | MN | TM | TS1 | TS2 | Avg |" in r.stdout
    for row in ("mt_split-simclr / contrastive", "mt_split-simclr / predictive", "cont / contrastive"):
        assert f"| {row} |" in r.stdout
    assert "| keywords | Avg |" in r.stdout  # head weights: only the multi-task model
    assert {p.name for p in (tmp_path / "run").iterdir()} == {"grids.md", "summary.json", "plotly.min.js"} | {f"{t}.{e}" for t in ("invariance", "head_weights")
                                                                             for e in ("md", "csv", "html")}


def test_invariance_bad_input_fails_clearly(tmp_path):
    r = run("invariance", str(tmp_path / "missing.pt"))
    assert r.returncode == 2 and "no such file" in r.stderr and "Traceback" not in r.stderr
    enc = _tiny_encoder(tmp_path / "m.pt", "mt_split")
    r = run("invariance", str(enc), "--set", "sets=nope", "--set", f"out_dir={tmp_path / 'run'}")
    assert r.returncode == 2 and "no set 'nope'" in r.stderr and "Traceback" not in r.stderr
    r = run("invariance", str(enc), "--set", "n_clips=1")
    assert r.returncode == 2 and "n_clips" in r.stderr
    # the grammar before one grammar for every command: a one-line hint to the field
    r = run("invariance", str(enc), "--set", "keywords")
    assert r.returncode == 2 and "--set sets=keywords" in r.stderr and "Traceback" not in r.stderr
    r = run("invariance", str(enc), "--clips", "4")
    assert r.returncode == 2 and "--set n_clips=VALUE" in r.stderr


def test_evaluate_a_saved_encoder(tmp_path):
    import json
    enc = _tiny_encoder(tmp_path / "tiny-run" / "encoder.pt", "mt_split")
    (tmp_path / "eval.yaml").write_text(f"sets: [keywords]\nn_tasks: 50\nout_dir: {tmp_path / 'run'}\n")
    r = run("evaluate", str(enc), "--config", str(tmp_path / "eval.yaml"), "--set", "shots=1,5", "--set", "device=cpu", "--quiet")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "| random init |" in r.stdout and "| tiny-run |" in r.stdout
    assert "5-way 1-shot, 50 tasks" in r.stdout and "5-way 5-shot, 50 tasks" in r.stdout
    for name in ("fewshot_1shot.md", "fewshot_1shot.csv", "fewshot_5shot.csv", "fewshot_5shot.html", "results.json"):
        assert (tmp_path / "run" / name).is_file(), name
    res = json.loads((tmp_path / "run" / "results.json").read_text())
    assert res["config"]["encoders"] == [str(enc)] and set(res["results"]["1shot"]) == {"random init", "tiny-run"}


def test_evaluate_fails_clearly_on_bad_input(tmp_path, capsys):
    from mtslvr.cli import main
    r = run("evaluate", str(tmp_path / "missing.pt"), "--quiet")  # once through the installed command
    assert r.returncode == 2 and "missing.pt: no such file" in r.stderr and "Traceback" not in r.stderr, r.stderr
    (tmp_path / "corrupt.pt").write_bytes(b"PK\x03\x04 not really a model")
    cases = [
        (["evaluate", str(tmp_path / "corrupt.pt")], ["corrupt.pt: cannot read it as an mtslvr model file"]),
        (["evaluate", "--set", "sets=keyword"], ["no set 'keyword'", "keywords"]),
        (["evaluate", "--set", "n_tasks=0"], ["config field 'n_tasks': got 0"]),
        (["evaluate", "--set", "shots=one"], ["config field 'shots'"]),
        (["evaluate", "--set", "n_task=5"], ["unknown config key 'n_task'", "did you mean 'n_tasks'"]),
        (["evaluate", "--config", str(tmp_path / "nope.yaml")], ["nope.yaml: config file not found"]),
    ]
    for args, expected in cases:
        code = 1 if "corrupt.pt" in args[1] else 2   # a damaged file: the run failed; the rest: bad input
        assert main([*args, "--set", f"out_dir={tmp_path / 'run'}", "--quiet"]) == code, args
        err = capsys.readouterr().err
        assert err.startswith("mtslvr evaluate: error: "), err
        for e in expected: assert e in err, (args, err)
    assert not (tmp_path / "run").exists()  # nothing written by a failed run


def test_invariance_on_a_plain_folder_of_clips(tmp_path):
    "Any folder: here a flat pool of clips (no classes), as the paper measured invariance on its pre-training data."
    enc = _tiny_encoder(tmp_path / "m.pt", "mt_split")
    t = torch.arange(8000) / 16000
    for i in range(6):
        save_audio(tmp_path / "pool" / f"{i}.flac", 0.3 * torch.sin(2 * torch.pi * (200 + 90 * i) * t))
    r = run("invariance", str(enc), "--set", f"data={tmp_path / 'pool'}", "--set", "n_clips=6", "--set", "seconds=0.5",
            "--set", "n_values=1", "--set", f"out_dir={tmp_path / 'run'}")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "layout flat" in r.stdout and "head weights: skipped" in r.stdout and "| m / contrastive |" in r.stdout
    assert "Covariance of the clean features: ledoit-wolf" in (tmp_path / "run" / "invariance.md").read_text()
