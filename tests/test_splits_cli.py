"""`mtslvr splits make FOLDER`: a class-disjoint split file of a `<class>/<audio files>` folder, and its bad inputs (exit 2)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mtslvr.audio import save_audio
from mtslvr.cli import main
from mtslvr.data import load_split

EXE = Path(sys.executable).parent / "mtslvr"


def _folder(root, classes, speaker_of):
    "Tiny real clips: <class>/<speaker>_<j>.flac."
    t = torch.arange(800) / 16000
    for i, c in enumerate(classes):
        for j in range(2):
            save_audio(root / c / f"{speaker_of(c)}_{j}.flac", 0.3 * torch.sin(2 * torch.pi * 200 * (i + 1) * t))
    return root


def test_make_writes_a_loadable_split_that_keeps_speakers_together(tmp_path, capsys):
    classes = [f"w{i:02d}" for i in range(10)]
    data = _folder(tmp_path / "words", classes, lambda c: f"spk{int(c[1:]) % 5}")   # w00 and w05 share spk0, ...
    cmd = [str(EXE), "splits", "make", str(data), "--fractions", "0.6,0.2,0.2", "--seed", "1", "--by-group", r"(spk\d+)_"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "wrote" in r.stdout and str(data / "split.json") in r.stdout
    sp = load_split(data / "split.json")
    assert sp.name == "words" and sorted(sp.train + sp.val + sp.test) == classes
    assert [len(sp.train), len(sp.val), len(sp.test)] == [6, 2, 2]
    for p in ("train", "val", "test"):
        assert sp[p] == sorted(sp[p])
        for c in sp[p]: assert f"w{(int(c[1:]) + 5) % 10:02d}" in sp[p], f"{c}'s speaker is in another part"
    first = (data / "split.json").read_text()
    assert main(cmd[1:]) == 2   # it exists: refused (in-process from here on: one start of the command is enough)
    assert "exists; pass --force" in capsys.readouterr().err and (data / "split.json").read_text() == first
    assert main(cmd[1:] + ["--force", "--out", str(tmp_path / "again.json")]) == 0
    assert (tmp_path / "again.json").read_text() == first   # the same seed, the same file
    assert main(cmd[1:] + ["--force", "--seed", "2"]) == 0 and (data / "split.json").read_text() != first


@pytest.fixture
def words(tmp_path):
    return _folder(tmp_path / "words", [f"w{i}" for i in range(4)], lambda c: "spk0" if c in ("w0", "w1") else f"s{c}")


@pytest.mark.parametrize("args, says", [
    (["--fractions", "0.7,0.2,0.2"], "sum to 1"),
    (["--fractions", "1.2,-0.2,0"], "non-negative"),
    (["--fractions", "0.7,0.3"], "expected 3"),
    (["--fractions", "a,b,c"], "--fractions a,b,c"),
    (["--by-group", "(["], "not a valid regular expression"),
    (["--by-group", "nothing_(\\d)"], "matches none of the 8 audio files"),
    (["--by-group", "(\\.flac)$"], "group(s) ['.flac'] tie 4 class(es) ['w0', 'w1', 'w2', 'w3']"),
])
def test_make_bad_input_exits_2_naming_it(words, args, says, capsys):
    assert main(["splits", "make", str(words), *args]) == 2
    err = capsys.readouterr().err
    assert says in err, err
    assert not (words / "split.json").exists()


def test_make_bad_folders_exit_2(tmp_path, capsys):
    (tmp_path / "empty" / "a").mkdir(parents=True)
    assert main(["splits", "make", str(tmp_path / "empty")]) == 2
    assert f"{tmp_path / 'empty'}: no class folders" in capsys.readouterr().err
    assert main(["splits", "make", str(tmp_path / "missing")]) == 2
    assert "no such folder" in capsys.readouterr().err
    two = _folder(tmp_path / "two", ["a", "b"], lambda c: c)
    assert main(["splits", "make", str(two)]) == 2
    assert "2 class(es), fewer than the 3 parts with a non-zero fraction" in capsys.readouterr().err
    assert main(["splits", "make", str(two), "--fractions", "0.5,0,0.5"]) == 0
    assert load_split(two / "split.json").val == []
