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


def test_demo_on_a_small_folder_reports_bad_files(tmp_path):
    t = torch.arange(32000) / 16000
    for c in ("a", "b"):
        save_audio(tmp_path / "set1" / c / "x.flac", 0.2 * torch.sin(2 * torch.pi * 300 * t))
    (tmp_path / "set1" / "b" / "corrupt.flac").write_bytes(b"fLaC\x00\x01garbage")
    r = run("demo", "--data", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "set1" in r.stdout and "skipped:" in r.stdout and "corrupt.flac" in r.stdout
    assert "ran:" in r.stdout


def test_demo_with_a_missing_folder_fails_clearly(tmp_path):
    r = run("demo", "--data", str(tmp_path / "nope"))
    assert r.returncode == 1
    assert "no such data folder" in r.stderr and "Traceback" not in r.stderr


def _metaaudio_split(path):
    import numpy as np
    arr = np.empty(3, dtype=object)
    arr[0], arr[1], arr[2] = np.array(["a", "b", "c"]), np.array(["d"]), np.array(["e", "f"])
    np.save(path, arr, allow_pickle=True)


def test_splits_convert_refuses_pickle_without_opt_in(tmp_path):
    _metaaudio_split(tmp_path / "esc.npy")
    r = run("splits", "convert", str(tmp_path / "esc.npy"), str(tmp_path / "esc.json"))
    assert r.returncode == 1 and "--allow-pickle" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "esc.json").exists()


def test_splits_convert_with_opt_in(tmp_path):
    import json
    _metaaudio_split(tmp_path / "esc.npy")
    r = run("splits", "convert", str(tmp_path / "esc.npy"), str(tmp_path / "esc.json"), "--allow-pickle")
    assert r.returncode == 0, r.stderr
    d = json.loads((tmp_path / "esc.json").read_text())
    assert (d["train"], d["val"], d["test"]) == (["a", "b", "c"], ["d"], ["e", "f"])
    r = run("splits", "convert", str(tmp_path / "esc.npy"), str(tmp_path / "esc.json"), "--allow-pickle")
    assert r.returncode == 1 and "--force" in r.stderr
