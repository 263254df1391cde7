"""The bundled benchmark in data/: layout, split files, counts, that every clip decodes at 16 kHz mono,
durations, loudness, total size, and that data/README.md's counts table matches the files.
Also unit tests of the generator's helpers (MIDI writer, trimming), which need no Debian packages."""
import csv
import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from mtslvr.audio import audio_info, is_silent, load_audio

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
SR = 16000
MAX_BYTES = 25_000_000
# set -> (min classes, min clips per class, min seconds, max seconds, real recordings?)
SETS = {
    "instruments": (20, 8, 0.2, 2.0, True),
    "keywords": (10, 8, 0.2, 1.5, False),
    "speakers": (10, 8, 2.0, 5.0, False),
    "languages": (15, 8, 2.0, 5.0, False),
}
SPLIT_KEYS = {"name", "description", "synthetic", "sample_rate", "piece_seconds", "train", "val", "test"}


def split(name):
    return json.loads((DATA / name / "split.json").read_text())


def clips(name):
    return sorted((DATA / name / "audio").glob("*/*.flac"))


def test_only_the_four_sets():
    assert sorted(p.name for p in DATA.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))) == sorted(SETS)


@pytest.mark.parametrize("name", SETS)
def test_split_file(name):
    s = split(name)
    assert set(s) == SPLIT_KEYS, f"{name}/split.json fields"
    assert s["name"] == name and s["sample_rate"] == SR
    assert isinstance(s["synthetic"], bool) and s["synthetic"] == (not SETS[name][4])
    assert ("synthetic" in s["description"].lower()) == s["synthetic"], "the description says whether the speech is synthetic"
    assert isinstance(s["piece_seconds"], float) and 0 < s["piece_seconds"] <= 5
    tr, va, te = (s[k] for k in ("train", "val", "test"))
    assert all(isinstance(c, str) for c in tr + va + te)
    assert len(set(tr + va + te)) == len(tr + va + te), f"{name}: train/val/test classes overlap"
    assert len(te) >= 5 and len(tr) >= 5 and len(va) >= 2
    folders = sorted(p.name for p in (DATA / name / "audio").iterdir())
    assert sorted(tr + va + te) == folders, f"{name}: the splits must cover the class folders exactly"


@pytest.mark.parametrize("name", SETS)
def test_counts_and_files(name):
    min_classes, min_clips, *_ = SETS[name]
    audio = DATA / name / "audio"
    assert all(p.is_dir() for p in audio.iterdir()), "audio/ holds only class folders"
    stray = [p for p in audio.rglob("*") if p.is_file() and (p.suffix != ".flac" or p.parent.parent != audio)]
    assert not stray, f"unexpected files: {stray[:5]}"
    per_class = {d.name: len(list(d.glob("*.flac"))) for d in audio.iterdir()}
    assert len(per_class) >= min_classes
    assert min(per_class.values()) >= min_clips, per_class
    assert all(re.fullmatch(r"[A-Za-z0-9_.+-]+", p.stem) for p in clips(name)), "file names are plain ASCII"


@pytest.mark.parametrize("name", SETS)
def test_every_clip_decodes_at_16k_mono_with_sane_length_and_level(name):
    *_, lo, hi, _ = SETS[name]
    for p in clips(name):
        info = audio_info(p)
        assert info["sample_rate"] == SR and info["channels"] == 1, p
        x = load_audio(p, SR)
        assert x.dtype == torch.float32 and x.ndim == 1
        assert lo - 1e-3 <= x.shape[0] / SR <= hi + 1e-3, f"{p}: {x.shape[0] / SR:.2f} s outside {lo}-{hi} s"
        assert not is_silent(x), f"{p} is silent"
        peak = x.abs().max().item()
        assert 0.5 < peak <= 1.0, f"{p}: peak {peak:.2f} (clips are peak-normalised to 0.9)"
        # trimmed: neither end holds 100 ms of near-silence
        edge = int(0.1 * SR)
        if x.shape[0] > 4 * edge:
            assert not is_silent(x[:edge], -70) and not is_silent(x[-edge:], -80), f"{p}: untrimmed silence"


@pytest.mark.parametrize("name", SETS)
def test_metadata_lists_exactly_the_clips(name):
    rows = list(csv.DictReader(open(DATA / name / "metadata.csv", newline="")))
    assert sorted(r["file"] for r in rows) == sorted(str(p.relative_to(DATA / name)) for p in clips(name))
    assert all(r["cls"] == Path(r["file"]).parent.name for r in rows)
    assert all(r["source"] and r["tool"] for r in rows), "every clip names its source"


def test_total_size():
    total = sum(p.stat().st_size for p in DATA.rglob("*") if p.is_file())
    assert total <= MAX_BYTES, f"data/ is {total / 1e6:.1f} MB > {MAX_BYTES / 1e6:.0f} MB"


def test_pretraining_pool_is_the_train_classes():
    pool = [p for n in SETS for c in split(n)["train"] for p in (DATA / n / "audio" / c).glob("*.flac")]
    held_out = {(n, c) for n in SETS for c in split(n)["val"] + split(n)["test"]}
    assert len(pool) >= 200
    assert not {(p.parts[-4], p.parent.name) for p in pool} & held_out


def test_readme_table_matches_the_files():
    txt = (DATA / "README.md").read_text()
    for name in SETS:
        row = re.search(rf"^\| {name} \|.*$", txt, re.M)
        assert row, f"data/README.md has no row for {name}: run data/make_minibench.py"
        cells = [c.strip() for c in row.group(0).strip("|").split("|")]
        assert int(cells[3]) == len(clips(name)), f"{name}: README says {cells[3]} clips"
        s = split(name)
        assert cells[2].startswith(f"{len(s['train'] + s['val'] + s['test'])} ({len(s['train'])} / {len(s['val'])} / {len(s['test'])})")
    assert "make_minibench.py" in txt and "licen" in txt.lower()


# ---- the generator's helpers (importable without the Debian packages)

@pytest.fixture(scope="module")
def gen():
    spec = importlib.util.spec_from_file_location("make_minibench", DATA / "make_minibench.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_midi_writer(gen):
    b = gen.midi_notes(40, [(60, 100, 0.5), (72, 64, 1.0)])
    assert b[:4] == b"MThd" and b[14:18] == b"MTrk"
    assert int.from_bytes(b[18:22], "big") == len(b) - 22, "track length"
    assert b.endswith(b"\xff\x2f\x00") and b"\xc0\x28" in b and b"\x90\x3c\x64" in b and b"\x80\x48\x40" in b
    assert gen._vlq(0) == b"\x00" and gen._vlq(0x7F) == b"\x7f" and gen._vlq(0x80) == b"\x81\x00" and gen._vlq(4800) == b"\xa5\x40"


def test_finish_trims_crops_and_normalises(gen):
    t = np.arange(SR) / SR
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    x = np.concatenate([np.zeros(SR // 2, np.float32), tone, np.zeros(SR, np.float32)])
    y = gen.finish(x, top_db=40, max_s=5.0)
    assert abs(len(y) / SR - 1.06) < 0.02, len(y) / SR  # 1 s of tone + 2 x 30 ms margins
    assert abs(np.abs(y).max() - 0.9) < 1e-6
    z = gen.finish(np.concatenate([tone, tone, tone]), top_db=40, max_s=2.0)
    assert len(z) == 2 * SR and abs(z[-1]) < 1e-3, "cropped clips end with a fade-out"
