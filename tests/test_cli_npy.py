"`mtslvr evaluate` on a folder of .npy clips; bad .npy files are bad input (exit 2) naming the file."
import numpy as np
import torch

from mtslvr.cli import main


def npy_set(root, classes=5, clips=3, sr=8000):
    "root/<class>/<i>.npy: 0.5 s tones, float32 1-d arrays."
    t = np.arange(sr // 2) / sr
    for k in range(classes):
        (root / f"c{k}").mkdir(parents=True, exist_ok=True)
        for i in range(clips): np.save(root / f"c{k}" / f"{i}.npy", (0.3 * np.sin(2 * np.pi * (200 + 60 * k + 7 * i) * t)).astype(np.float32))
    return root


def test_evaluate_reads_npy_clips_at_the_stated_rate(tmp_path, capsys):
    s = npy_set(tmp_path / "toy")
    args = ["evaluate", "--set", f"data={s}", "--set", "n_tasks=5", "--set", "shots=1", "--set", "device=cpu", "--set", "cache=false"]
    assert main(args + ["--set", "sample_rate=8000", "--set", f"out_dir={tmp_path / 'e'}"]) == 0
    out = capsys.readouterr().out
    assert "toy: .npy clips read as 8000 Hz (config field sample_rate)" in out and "15 clips" in out, out
    assert main(args + ["--set", f"out_dir={tmp_path / 'e2'}"]) == 0
    assert ".npy clips read as 16000 Hz (the default; set sample_rate=...)" in capsys.readouterr().out
    # a 2-d array, a pickled object array, an .npy of text: exit 2, the file named
    for name, arr in (("stereo.npy", np.zeros((2, 4000), np.float32)), ("pickled.npy", np.array([{"a": 1}], dtype=object)),
                      ("text.npy", np.array(["a", "b"]))):
        bad = npy_set(tmp_path / name.split(".")[0])
        np.save(bad / "c0" / name, arr, allow_pickle=True)
        assert main(["evaluate", "--set", f"data={bad}", "--set", "n_tasks=5", "--set", "shots=1", "--set", "device=cpu",
                     "--set", f"out_dir={tmp_path / ('o' + name)}", "--quiet"]) == 2
        err = capsys.readouterr().err
        assert f"c0/{name}" in err, err
