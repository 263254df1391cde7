"""mtslvr.data on bad input: broken, silent and too-short files, manifests that leave the root,
pickled split files; plus a small end-to-end run through a DataLoader and the few-shot sampler."""
import math
import warnings

import numpy as np
import pytest
import torch

from mtslvr.audio import AudioError, save_audio
from mtslvr.tasks import FewShotSampler
from mtslvr.data import (AudioFolder, DataWarning, Split, convert_split, load_split,
                         pretrain_pool, seeded_generator)


def tone(seconds, freq=440.0, sr=16000):
    t = torch.arange(int(seconds * sr)) / sr
    return 0.3 * torch.sin(2 * math.pi * freq * t)


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "set"
    for c, f0 in [("a", 300), ("b", 500)]:
        for i in range(3):
            save_audio(root / c / f"{i}.flac", tone(1.0, f0 + 50 * i))
    return root


def build(root, **kw):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        ds = AudioFolder(root, **kw)
    return ds, [x for x in w if issubclass(x.category, DataWarning)]


def test_clean_folder_gives_no_warning(folder):
    ds, w = build(folder)
    assert w == [] and len(ds) == 6 and ds.skipped == []
    assert ds.labels.tolist() == [0, 0, 0, 1, 1, 1]


@pytest.mark.parametrize("name,content,reason", [
    ("corrupt.flac", b"fLaC" + bytes(range(256)) * 3, "unreadable"),
    ("empty.wav", b"", "unreadable"),
    ("riff.wav", b"RIFF\x00\x00\x00\x00WAVEfmt ", "unreadable"),
])
def test_unreadable_file_is_skipped_and_reported_once(folder, name, content, reason):
    (folder / "b" / name).write_bytes(content)
    ds, w = build(folder)
    assert len(ds) == 6 and len(w) == 1
    msg = str(w[0].message)
    assert f"skipped 1 of 7 files: 1 {reason} ({name})" in msg
    assert [(f.name, r) for f, r, _ in ds.skipped] == [(name, reason)]
    assert all(f.name != name for f in ds.files)
    with pytest.raises(AudioError, match=f"(?s)1 of 7 files cannot be used.*{name}"):
        AudioFolder(folder, strict=True)


def test_silent_and_too_short_files(folder):
    save_audio(folder / "a" / "silence.flac", torch.zeros(16000))
    save_audio(folder / "a" / "hum.flac", 1e-3 * tone(1.0))  # about -73 dBFS: silent at the default -60 dB
    save_audio(folder / "b" / "click.wav", tone(0.01))
    ds, w = build(folder)
    assert len(ds) == 6 and len(w) == 1
    msg = str(w[0].message)
    assert "skipped 3 of 9 files" in msg and "2 silent (" in msg and "1 too short (click.wav)" in msg
    # thresholds are the caller's
    ds2, _ = build(folder, min_seconds=0.005, silence_db=-120)
    assert len(ds2) == 8 and {f.name for f, *_ in ds2.skipped} == {"silence.flac"}
    with pytest.raises(AudioError) as e:
        AudioFolder(folder, strict=True)
    for n in ("silence.flac", "hum.flac", "click.wav"):
        assert n in str(e.value)


def test_many_bad_files_are_one_warning_with_a_few_names(folder):
    for i in range(7):
        (folder / "a" / f"bad{i}.wav").write_bytes(b"nope")
    ds, w = build(folder)
    assert len(w) == 1 and "7 unreadable (bad0.wav, bad1.wav, bad2.wav, ...)" in str(w[0].message)
    assert len(ds.skipped) == 7


def test_nothing_usable_is_an_error(tmp_path):
    save_audio(tmp_path / "only" / "x.wav", torch.zeros(8000))
    with pytest.raises(ValueError, match="no usable audio files left"):
        build(tmp_path / "only")


@pytest.mark.parametrize("line", ["../outside.wav", "a/../../outside.wav", "{abs}"])
def test_manifest_cannot_leave_the_root(folder, tmp_path, line):
    outside = save_audio(tmp_path / "outside.wav", tone(0.5))
    line = line.format(abs=outside)
    (folder / "list.csv").write_text(f"path,label\na/0.flac,x\n{line},y\n")
    with pytest.raises(ValueError, match=r"list\.csv line 3: path .* is outside the dataset root"):
        AudioFolder(folder, manifest=folder / "list.csv")


def test_manifest_inside_the_root_works_with_dotdot_and_absolute_paths(folder):
    (folder / "list.csv").write_text(f"a/../b/1.flac,x\n{folder / 'a' / '2.flac'},y\n")
    ds, _ = build(folder, manifest=folder / "list.csv")
    assert [f.name for f in ds.files] == ["1.flac", "2.flac"] and ds.classes == ["x", "y"]


def test_manifest_missing_file_is_reported_as_unreadable(folder):
    (folder / "list.csv").write_text("a/0.flac\na/missing.flac\n")
    ds, w = build(folder, manifest=folder / "list.csv")
    assert len(ds) == 1 and "1 unreadable (missing.flac)" in str(w[0].message)


class _Boom:
    "Unpickling this creates a file: the code-execution risk of allow_pickle, made visible."
    def __init__(self, marker): self.marker = str(marker)
    def __reduce__(self): return (open, (self.marker, "w"))


def test_pickled_split_is_refused_without_opt_in(tmp_path):
    marker = tmp_path / "pwned"
    arr = np.empty(3, dtype=object)
    arr[0], arr[1], arr[2] = ["a"], ["b"], [_Boom(marker)]
    np.save(tmp_path / "evil.npy", arr, allow_pickle=True)
    for call in (lambda: load_split(tmp_path / "evil.npy"),
                 lambda: convert_split(tmp_path / "evil.npy", tmp_path / "out.json")):
        with pytest.raises(ValueError, match="runs code") as e:
            call()
        assert "allow_pickle=True" in str(e.value) and "--allow-pickle" in str(e.value)
    assert not marker.exists() and not (tmp_path / "out.json").exists()


def test_trusted_pickled_split_converts(tmp_path):
    arr = np.empty(3, dtype=object)
    arr[0], arr[1], arr[2] = np.array(["a", "b", "c"]), np.array(["d"]), np.array(["e", "f"])
    np.save(tmp_path / "ESC_paper_splits.npy", arr, allow_pickle=True)
    out = convert_split(tmp_path / "ESC_paper_splits.npy", tmp_path / "esc.json", allow_pickle=True)
    sp = load_split(out)
    assert (sp.train, sp.val, sp.test, sp.name) == (["a", "b", "c"], ["d"], ["e", "f"], "ESC_paper_splits")
    # a MetaAudio split with a class in two parts is rejected like one of ours
    arr[2] = np.array(["a"])
    np.save(tmp_path / "bad.npy", arr, allow_pickle=True)
    with pytest.raises(ValueError, match="class 'a' is in both 'train' and 'test'"):
        load_split(tmp_path / "bad.npy", allow_pickle=True)


def test_pretrain_pool_through_a_dataloader_and_few_shot_tasks(tmp_path):
    for s, classes in [("s1", ["a", "b", "c"]), ("s2", ["x", "y"])]:
        for i, c in enumerate(classes):
            for j in range(3):
                save_audio(tmp_path / s / "audio" / c / f"{j}.flac", tone(0.3 + 0.4 * j, 200 + 100 * i))
    Split("s1", ["a", "b"], [], ["c"]).save(tmp_path / "s1" / "split.json")
    Split("s2", ["x"], ["y"], []).save(tmp_path / "s2" / "split.json")
    pool = pretrain_pool(tmp_path, crop_seconds=0.5, seed=3)
    assert pool.classes == ["s1/a", "s1/b", "s2/x"] and len(pool) == 9
    dl = torch.utils.data.DataLoader(pool, batch_size=4, shuffle=False)
    xs = torch.cat([x for x, _ in dl])
    assert xs.shape == (9, 8000) and torch.isfinite(xs).all()
    assert torch.equal(xs, torch.cat([x for x, _ in dl]))  # same epoch, same crops
    a, _ = pool.crops(range(9), seeded_generator(3, 5))
    b, _ = pool.crops(range(9), seeded_generator(3, 5))
    assert torch.equal(a, b)
    fs = FewShotSampler(pool.labels, n_way=3, k_shot=2, q_queries=1, n_tasks=20, seed=1)
    for t in fs:
        assert set(pool.labels[t.support].reshape(-1).tolist()) == set(t.classes.tolist())
        assert len(set(torch.cat([t.support, t.query], 1).reshape(-1).tolist())) == 9
    with pytest.raises(ValueError, match="only 0 classes have at least k_shot \\+ q_queries = 4 clips"):
        FewShotSampler(pool.labels, n_way=3, k_shot=3, q_queries=1)
