"""`mtslvr evaluate` and `mtslvr splits make` on data as users have it: a plain `<class>/<audio files>` folder."""
import json
import subprocess
import sys
from pathlib import Path

import torch

from mtslvr.audio import save_audio

EXE = Path(sys.executable).parent / "mtslvr"


def run(*args, **kw):
    return subprocess.run([str(EXE), *args], capture_output=True, text=True, timeout=300, **kw)


def _tones(root, classes, clips=3, seconds=0.5, name=lambda c, j: f"{j}.flac"):
    t = torch.arange(int(16000 * seconds)) / 16000
    for i, c in enumerate(classes):
        for j in range(clips):
            save_audio(root / c / name(c, j), 0.3 * torch.sin(2 * torch.pi * (150 * (i + 1) + 20 * j) * t))
    return root


def _tiny_encoder(path):
    from mtslvr.frontend import Spectrogram3C
    from mtslvr.models import AudioEncoder, build_encoder
    torch.manual_seed(0)
    return AudioEncoder(Spectrogram3C(), build_encoder("cont_only", width=4, depths=(1, 1, 1, 1), out_dim=16)).save(path)


def test_evaluate_a_plain_folder_of_classes(tmp_path):
    "No split file: every class is evaluated, and the output says so; too few classes or no audio: exit 2 naming the folder."
    enc = _tiny_encoder(tmp_path / "enc.pt")
    data = _tones(tmp_path / "mine", [f"c{i}" for i in range(6)])
    r = run("evaluate", str(enc), "--set", f"data={data}", "--set", "shots=1", "--set", "n_tasks=20", "--set", "piece_seconds=0.5",
            "--set", f"out_dir={tmp_path / 'run'}", "--quiet")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "layout classes" in r.stdout and "mine: no split file, all 6 classes" in r.stdout
    assert "| model | mine | avg. rank |" in r.stdout
    res = json.loads((tmp_path / "run" / "results.json").read_text())
    assert res["sets"]["mine"]["classes"] == [f"c{i}" for i in range(6)]
    one = _tones(tmp_path / "one", ["c0"])
    r = run("evaluate", str(enc), "--set", f"data={one}", "--set", f"out_dir={tmp_path / 'run1'}", "--quiet")
    assert r.returncode == 2 and f"{one}: 1 class folder(s) with audio (c0), a 5-way task needs at least 5" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    (tmp_path / "noaudio" / "c0").mkdir(parents=True)
    (tmp_path / "noaudio" / "c0" / "notes.txt").write_text("not audio")
    r = run("evaluate", str(enc), "--set", f"data={tmp_path / 'noaudio'}", "--set", f"out_dir={tmp_path / 'run2'}", "--quiet")
    assert r.returncode == 2 and f"{tmp_path / 'noaudio'}: no audio files" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "run1").exists() and not (tmp_path / "run2").exists()
