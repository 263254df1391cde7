"""No leak from the pre-training pool into evaluation, checked on the committed data/<set>/metadata.csv files.

The pool is every clip of every set's train classes (`mtslvr.data.pretrain_pool`). For every set S and every
val/test class of S, what makes that class itself must appear in no pool clip of any set:
- speakers: the speaker (the recorded person behind a flite/festival voice, or the espeak-ng voice+variant) and,
  for espeak-ng, the variant alone (the variant sets the timbre: pitch, formants; the base voice sets the accent);
- keywords: the word, spoken anywhere in a pool clip's text (as a word, inflected or compounded, as a numeral or
  a homophone) in any language, and the recording a keyword clip was made from;
- languages: the language (so no pool clip is spoken in it, by any espeak-ng voice of it);
- instruments: the General MIDI program and every soundfont sample that sounds in its clips.
`MTSLVR_DATA` points the test at another data folder (e.g. an older checkout's, to see it fail)."""
import csv
import json
import re

import pytest

from mtslvr.audio import find_data_root

DATA = find_data_root()
SETS = ["instruments", "keywords", "speakers", "languages"]
SPEECH = {"espeak-ng", "flite", "festival", "asterisk"}
NUMBERS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
# spoken the same as a keyword: a pool text holding one of these speaks that keyword
HOMOPHONES = {"one": {"won"}, "two": {"to", "too"}, "four": {"for", "fore"}, "eight": {"ate"}, "no": {"know"}}


def read(name):
    split = json.loads((DATA / name / "split.json").read_text())
    part = {c: p for p in ("train", "val", "test") for c in split[p]}
    rows = list(csv.DictReader(open(DATA / name / "metadata.csv", newline="", encoding="utf-8")))
    for r in rows: r["set"], r["part"] = name, part[r["cls"]]
    return rows


@pytest.fixture(scope="module")
def rows():
    return {n: read(n) for n in SETS}


# The identity fields. Older metadata lacked some columns: derive them from `voice` there, so the test also
# reports the leaks of that data rather than only the missing columns (test_metadata_records_identity fails on it).
def speaker(r): return r.get("speaker") or f"{r['tool']}:{r['voice']}"
def variant(r): return (r.get("variant") or r["voice"].partition("+")[2]) if r["tool"] == "espeak-ng" else ""
def language(r):
    if r["tool"] not in SPEECH: return ""
    return r.get("language") or (r["voice"].split("+")[0].split("-")[0] if r["tool"] == "espeak-ng" else "en")
def program(r): return r.get("program") or r["voice"].removeprefix("GM program ")
def samples(r): return [s for s in r.get("samples", "").split(";") if s]


def tags(r) -> set:
    "What a clip is made of: (kind, value) pairs comparable across sets."
    t = set()
    if r["tool"] in SPEECH: t |= {("speaker", speaker(r)), ("language", language(r))}
    if r["tool"] == "espeak-ng": t.add(("espeak-ng variant", variant(r)))
    if r.get("asterisk_file"): t.add(("recording", r["asterisk_file"]))
    if r["tool"] == "fluidsynth": t |= {("program", program(r))} | {("sample", s) for s in samples(r)}
    return t


def identity(name, cls_rows) -> set:
    "What makes a class itself (the tags a pool clip must not share), from the clips of the class."
    if name == "speakers": kinds = {"speaker", "espeak-ng variant"}
    elif name == "languages": kinds = {"language"}
    elif name == "instruments": kinds = {"program", "sample"}
    else: kinds = {"recording"}  # keywords: the word itself is checked in the texts, by `speaks`
    return {t for r in cls_rows for t in tags(r) if t[0] in kinds}


def speaks(text: str, word: str) -> bool:
    """Whether `text` says `word`: a token equal to it, starting with it (nineteen, stopped, yesterday), holding it
    (nonstop; words of 4+ letters), a numeral with its digit, or a homophone. Over-strict on purpose: a few tokens
    that only begin with the letters (e.g. 'good' for 'go') count too, and the generator avoids them."""
    for t in re.findall(r"\w+", text.lower()):
        if t == word or t.startswith(word) or (len(word) >= 4 and word in t) or t in HOMOPHONES.get(word, ()): return True
        if any(NUMBERS[int(d)] == word for d in t if d.isdigit()): return True
    return False


def test_speaks():
    assert speaks("The library opens at nine o'clock.", "nine") and speaks("Nineteen boats", "nine")
    assert speaks("We met yesterday", "yes") and speaks("It stopped.", "stop") and speaks("a nonstop train", "stop")
    assert speaks("Walk to the bridge", "two") and speaks("Room 9", "nine") and speaks("Come, go!", "go")
    assert not speaks("The old man walked slowly along the river.", "two") and not speaks("eyes", "yes")


def test_metadata_records_identity(rows):
    "Every clip names what the leak test compares, so the test below cannot pass by missing a field."
    for name, rs in rows.items():
        for r in rs:
            where = f"{name}/{r['file']}"
            for k in ("tool", "source", "voice"): assert r.get(k), f"{where}: no {k!r}"
            if r["tool"] in SPEECH:
                for k in ("speaker", "language", "text"): assert r.get(k), f"{where}: speech without {k!r}"
            if r["tool"] == "espeak-ng":
                assert r.get("variant") and "+" not in r["voice"], f"{where}: espeak-ng voice and variant apart"
                assert r["language"] == r["voice"].split("-")[0], f"{where}: language {r['language']!r} vs voice"
            if r["tool"] == "fluidsynth":
                assert r.get("program", "").isdigit() and samples(r), f"{where}: no GM program or soundfont samples"
        for c in {r["cls"] for r in rs}:
            cr = [r for r in rs if r["cls"] == c]
            if name == "speakers": assert len({speaker(r) for r in cr}) == 1, f"speakers/{c}: one speaker per class"
            if name == "languages": assert {language(r) for r in cr} == {c}, f"languages/{c}: clips in its language"
            if name == "instruments": assert len({program(r) for r in cr}) == 1, f"instruments/{c}: one program"
            if name == "keywords": assert all(speaks(r["text"], c) for r in cr), f"keywords/{c}: clips say the word"


@pytest.mark.parametrize("name", SETS)
def test_no_val_or_test_class_leaks_into_the_pool(rows, name):
    pool = [r for rs in rows.values() for r in rs if r["part"] == "train"]
    assert len(pool) >= 200
    leaks = {}  # (class, kind, value) -> pool clips sharing it
    for c in sorted({r["cls"] for r in rows[name] if r["part"] != "train"}):
        cr = [r for r in rows[name] if r["cls"] == c]
        ident = identity(name, cr)
        for r in pool:
            shared = tags(r) & ident
            if name == "keywords" and r.get("text") and speaks(r["text"], c): shared.add(("word", c))
            for k, v in shared: leaks.setdefault((f"{name}/{c} ({cr[0]['part']})", k, v), []).append(f"{r['set']}/{r['file']}")
    assert not leaks, f"{len(leaks)} identities of {name}'s val/test classes in the pool:\n" + "\n".join(
        f"{c}: {k} {v!r} in {len(p)} pool clips, e.g. {p[0]}" for (c, k, v), p in sorted(leaks.items()))
