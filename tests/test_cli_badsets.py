"`mtslvr evaluate` on sets few-shot tasks cannot use: bad input (exit 2), the message naming the class or the split."
import json

import torch

from mtslvr.audio import save_audio
from mtslvr.cli import main


def clips(folder, n=3):
    for i in range(n): save_audio(folder / f"{i}.wav", 0.1 * torch.randn(1600, generator=torch.Generator().manual_seed(i)), 16000)


def evaluate(tmp_path, data, *extra):
    return main(["evaluate", "--set", f"data={data}", "--set", "n_tasks=5", "--set", "shots=1", "--set", "device=cpu",
                 "--set", f"out_dir={tmp_path / 'out'}", *extra, "--quiet"])


def test_one_class_only_is_bad_input_naming_it(tmp_path, capsys):
    clips(tmp_path / "one" / "owl")
    assert evaluate(tmp_path, tmp_path / "one", "--set", "n_way=2") == 2
    err = capsys.readouterr().err
    # a plain <class>/<files> folder is refused before any work, naming the folder, its one class and n_way
    assert "one: 1 class folder(s) with audio (owl), a 2-way task needs at least 2" in err and "n_way" in err, err


def test_a_split_naming_a_missing_class_is_bad_input_naming_it(tmp_path, capsys):
    s = tmp_path / "toy"
    for c in ("tr", "a", "b"): clips(s / c)
    (s / "split.json").write_text(json.dumps(dict(name="toy", train=["tr"], val=[], test=["a", "b", "ghost"])))
    assert evaluate(tmp_path, s, "--set", "n_way=2") == 2
    err = capsys.readouterr().err
    assert "ghost" in err and "no folder for classes" in err, err
    (s / "split.json").write_text(json.dumps(dict(name="toy", train=["gone"], val=[], test=["a", "b"])))   # in the train part
    assert evaluate(tmp_path, s, "--set", "n_way=2") == 2
    err = capsys.readouterr().err
    assert "gone" in err and "'data'" in err, err
