#!/usr/bin/env python
"""Generate mtslvr's bundled few-shot audio benchmark: data/<set>/audio/<class>/<clip>.flac + split.json.

Regenerate everything (from the repository root, after `make env`):

    .venv/bin/python data/make_minibench.py

It needs these Debian *main* packages (Debian 12 "bookworm" versions were used):

    apt-get update && apt-get install -y --no-install-recommends \
        fluidsynth fluid-soundfont-gm espeak-ng flite \
        festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts \
        asterisk-core-sounds-en-wav

Sets (see data/README.md for provenance and licences):
- instruments: real recordings (sampled instruments of the FluidR3 GM soundfont), one class per GM program,
  clips = single notes of different pitch, velocity and length, rendered headless by fluidsynth from MIDI
  files this script writes.
- keywords: synthetic speech (espeak-ng, flite, festival) plus one real recording per word where the
  asterisk prompt set has it; one class per word, clips = voices.
- speakers: synthetic speech; one class per voice, clips = different English sentences (2-5 s).
- languages: synthetic speech (espeak-ng); one class per language, clips = sentences and voice variants (2-5 s).

No leak: the pre-training pool (every clip of the train classes of all sets) holds no identity of a val/test class:
no speaker or espeak-ng variant of a speakers val/test voice (keywords and languages use other voices), no
keywords val/test word in a pool sentence, no val/test language, no GM program or soundfont sample of a val/test
instrument. metadata.csv records what tests/test_data_leak.py compares (speaker, variant, language, text, program,
samples); `check_voices` checks the tables before rendering.

Every clip: resampled to 16 kHz mono (soxr), leading/trailing silence trimmed, 5 ms fades, peak-normalised
to 0.9, written as 16-bit FLAC with `mtslvr.audio.save_audio`. All random choices come from generators
seeded by a CRC of the set and class name, so re-running gives the same clips. The script rewrites the
four set folders, data/<set>/metadata.csv (one row per clip: what made it) and the counts table in
data/README.md.
"""
from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

DATA = Path(__file__).resolve().parent
sys.path.insert(0, str(DATA.parent))
from mtslvr.audio import save_audio  # noqa: E402

SR = 16000
PEAK = 0.9
SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
ASTERISK = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
TOOLS = {"fluidsynth": "fluidsynth", "espeak-ng": "espeak-ng", "flite": "flite", "text2wave": "festival"}


def rng_for(*names) -> np.random.Generator:
    "A generator seeded by the names (CRC32, stable across runs and Python versions)."
    return np.random.default_rng(zlib.crc32("/".join(names).encode()))


# --------------------------------------------------------------------------- signal clean-up

def to_mono_16k(path: Path) -> np.ndarray:
    x, sr = sf.read(str(path), dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    if sr != SR: x = soxr.resample(x, sr, SR, quality="HQ").astype(np.float32)
    return x


def trim(x: np.ndarray, top_db: float, margin_s: float = 0.03) -> np.ndarray:
    "Cut leading/trailing 10 ms frames quieter than `top_db` below the loudest frame, keeping a small margin."
    hop = SR // 100
    n = len(x) // hop
    rms = np.sqrt((x[: n * hop].reshape(n, hop).astype(np.float64) ** 2).mean(1) + 1e-20)
    loud = np.flatnonzero(rms >= rms.max() * 10 ** (-top_db / 20))
    m = int(margin_s * SR)
    return x[max(0, loud[0] * hop - m): min(len(x), (loud[-1] + 1) * hop + m)]


def fade(x: np.ndarray, in_s: float = 0.005, out_s: float = 0.005) -> np.ndarray:
    "Raised-cosine fade-in and fade-out, so trimmed or cropped edges do not click."
    x = x.copy()
    n_in, n_out = (min(int(s * SR), len(x) // 2) for s in (in_s, out_s))
    ramp = lambda n: (0.5 - 0.5 * np.cos(np.linspace(0, np.pi, n))).astype(np.float32)
    if n_in: x[:n_in] *= ramp(n_in)
    if n_out: x[-n_out:] *= ramp(n_out)[::-1]
    return x


def finish(x: np.ndarray, top_db: float, max_s: float) -> np.ndarray:
    "Trim, crop to `max_s` (with a 50 ms fade-out where cut), fade the edges, peak-normalise to PEAK."
    x = trim(x, top_db)
    cut = len(x) > int(max_s * SR)
    if cut: x = x[: int(max_s * SR)]
    x = fade(x, out_s=0.05 if cut else 0.005)
    return (x * (PEAK / np.abs(x).max())).astype(np.float32)


# --------------------------------------------------------------------------- renderers (each returns a waveform)

def run(cmd: list[str], **kw) -> None:
    r = subprocess.run(cmd, capture_output=True, **kw)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({r.returncode}): {r.stderr.decode(errors='replace')[-500:]}")


def _vlq(n: int) -> bytes:
    out = [n & 0x7F]
    while n > 0x7F:
        n >>= 7
        out.append((n & 0x7F) | 0x80)
    return bytes(reversed(out))


NOTE_SLOT_S = 5.0  # each note of a program gets its own 5 s slot in one MIDI file: held <= 1.2 s, then released


def midi_notes(program: int, notes: list[tuple[int, int, float]]) -> bytes:
    "A format-0 MIDI file on channel 0: `program`, then each (pitch, velocity, seconds) note at the start of its slot."
    tpq, tempo, tps = 480, 500_000, 960  # 480 ticks per quarter at 120 bpm: 960 ticks per second
    ev = _vlq(0) + b"\xff\x51\x03" + tempo.to_bytes(3, "big") + _vlq(0) + bytes([0xC0, program])
    now = 0
    for k, (pitch, velocity, note_s) in enumerate(notes):
        on, off = round(k * NOTE_SLOT_S * tps), round((k * NOTE_SLOT_S + note_s) * tps)
        ev += _vlq(on - now) + bytes([0x90, pitch, velocity]) + _vlq(off - on) + bytes([0x80, pitch, 64])
        now = off
    ev += _vlq(round(len(notes) * NOTE_SLOT_S * tps) - now) + b"\xff\x2f\x00"
    return (b"MThd" + (6).to_bytes(4, "big") + (0).to_bytes(2, "big") + (1).to_bytes(2, "big") + tpq.to_bytes(2, "big")
            + b"MTrk" + len(ev).to_bytes(4, "big") + ev)


_programs: dict[int, np.ndarray] = {}
_program_locks: dict[int, threading.Lock] = {}
_locks_lock = threading.Lock()


def render_note(tmp: Path, program, notes, k) -> np.ndarray:
    "Note `k` of `notes`: all notes of a program are rendered once (loading the soundfont is the slow part), then sliced."
    with _locks_lock: lock = _program_locks.setdefault(program, threading.Lock())
    with lock:
        if program not in _programs:
            mid, wav = tmp / "n.mid", tmp / "n.wav"
            mid.write_bytes(midi_notes(program, notes))
            # 48 kHz then soxr to 16 kHz: fluidsynth's own interpolation does not band-limit. No reverb/chorus: dry notes.
            run(["fluidsynth", "-n", "-i", "-q", "-R", "0", "-C", "0", "-g", "0.6", "-r", "48000",
                 "-F", str(wav), str(SOUNDFONT), str(mid)])
            _programs[program] = to_mono_16k(wav)
    slot = int(NOTE_SLOT_S * SR)
    return _programs[program][k * slot:(k + 1) * slot]


def render_espeak(tmp: Path, text, voice, speed=175, pitch=50) -> np.ndarray:
    wav = tmp / "e.wav"
    run(["espeak-ng", "-b", "1", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(wav), text])
    return to_mono_16k(wav)


def render_flite(tmp: Path, text, voice) -> np.ndarray:
    wav = tmp / "f.wav"
    run(["flite", "-voice", voice, "-t", text, "-o", str(wav)])
    return to_mono_16k(wav)


def render_festival(tmp: Path, text, voice) -> np.ndarray:
    txt, wav = tmp / "t.txt", tmp / "t.wav"
    txt.write_text(text + "\n")
    run(["text2wave", "-eval", f"(voice_{voice})", str(txt), "-o", str(wav)])
    return to_mono_16k(wav)


def render_file(tmp: Path, path) -> np.ndarray:
    return to_mono_16k(Path(path))


def read_sf2(path: Path = SOUNDFONT):
    "The preset and instrument zones of a SoundFont 2 file: {(bank, program): (name, zones)}, [(name, zones)], [sample names]."
    import struct
    b, pos, chunks = path.read_bytes(), 12, {}
    assert b[:4] == b"RIFF" and b[8:12] == b"sfbk", f"{path}: not a SoundFont 2 file"
    while pos < len(b):
        cid, size = b[pos:pos + 4], int.from_bytes(b[pos + 4:pos + 8], "little")
        if cid == b"LIST" and b[pos + 8:pos + 12] == b"pdta":
            q = pos + 12
            while q < pos + 8 + size:
                n = int.from_bytes(b[q + 4:q + 8], "little")
                chunks[b[q:q + 4].decode()], q = b[q + 8:q + 8 + n], q + 8 + n + (n & 1)
        pos += 8 + size + (size & 1)
    recs = lambda k, fmt: list(struct.iter_unpack(fmt, chunks[k]))
    name = lambda raw: raw.split(b"\0")[0].decode("latin-1").strip()
    def zones(bags, gens, lo, hi):  # each zone: {generator operator: amount}
        return [{op: amt for op, amt in gens[bags[z][0]:bags[z + 1][0]]} for z in range(lo, hi)]
    phdr, pbag, pgen = recs("phdr", "<20sHHHIII"), recs("pbag", "<HH"), recs("pgen", "<HH")
    inst, ibag, igen = recs("inst", "<20sH"), recs("ibag", "<HH"), recs("igen", "<HH")
    presets = {(h[2], h[1]): (name(h[0]), zones(pbag, pgen, h[3], phdr[i + 1][3])) for i, h in enumerate(phdr[:-1])}
    insts = [(name(h[0]), zones(ibag, igen, h[1], inst[i + 1][1])) for i, h in enumerate(inst[:-1])]
    return presets, insts, [name(h[0]) for h in recs("shdr", "<20sIIIIIBbHH")]


def sounding_samples(sf2, program: int, key: int, velocity: int) -> tuple[str, list[str]]:
    "The preset name and the samples a note of `program` (bank 0) plays: the zones whose key and velocity ranges hold it."
    presets, insts, samples = sf2
    holds = lambda z: all(lo <= v <= hi for op, v in ((43, key), (44, velocity))
                          for lo, hi in [(z.get(op, 0x7F00) & 0xFF, z.get(op, 0x7F00) >> 8)])
    preset, pzones = presets[(0, program)]
    out = {samples[iz[53]] for pz in pzones if 41 in pz and holds(pz) for iz in insts[pz[41]][1] if 53 in iz and holds(iz)}
    if not out: raise RuntimeError(f"{SOUNDFONT}: program {program} plays no sample for key {key}, velocity {velocity}")
    return preset, sorted(out)


RENDER = {"fluidsynth": render_note, "espeak-ng": render_espeak, "flite": render_flite,
          "festival": render_festival, "asterisk": render_file}

# --------------------------------------------------------------------------- the sets
# A job: dict(cls, clip, tool, args, meta) -> one clip. `finish` settings per set: (top_db, max_s, min_s).

# GM program -> (class name, lowest, highest MIDI note played): ranges keep to each instrument's real compass.
PROGRAMS = {
    0: ("acoustic_grand_piano", 36, 96), 6: ("harpsichord", 41, 89), 11: ("vibraphone", 53, 89),
    13: ("xylophone", 65, 96), 16: ("drawbar_organ", 36, 96), 19: ("church_organ", 36, 84),
    21: ("accordion", 53, 89), 24: ("acoustic_guitar_nylon", 40, 84), 29: ("overdriven_guitar", 40, 84),
    32: ("acoustic_bass", 28, 55), 33: ("electric_bass_finger", 28, 60), 40: ("violin", 55, 96),
    42: ("cello", 36, 72), 46: ("orchestral_harp", 36, 96), 47: ("timpani", 40, 57),
    52: ("choir_aahs", 48, 79), 56: ("trumpet", 55, 82), 57: ("trombone", 40, 72),
    60: ("french_horn", 41, 77), 65: ("alto_sax", 49, 80), 68: ("oboe", 58, 91), 71: ("clarinet", 50, 89),
    73: ("flute", 60, 96), 114: ("steel_drums", 52, 84),
}
INSTR_CLIPS = 10


def instrument_jobs():
    jobs, sf2 = [], read_sf2()
    for prog, (name, lo, hi) in PROGRAMS.items():
        g = rng_for("instruments", name)
        # pitches spread over the compass (jittered), so every clip is a different note
        pitches = np.clip(np.round(np.linspace(lo, hi, INSTR_CLIPS) + g.uniform(-1.5, 1.5, INSTR_CLIPS)), lo, hi).astype(int)
        g.shuffle(pitches)
        notes = [(int(p), int(g.integers(50, 128)), round(float(g.uniform(0.25, 1.2)), 3)) for p in pitches]
        for i, (p, vel, dur) in enumerate(notes):
            preset, samples = sounding_samples(sf2, prog, p, vel)  # recorded for the leak test: no sample is shared
            jobs.append(dict(cls=name, clip=f"{name}_{i:02d}_p{p}_v{vel}", tool="fluidsynth",
                             args=(prog, notes, i),
                             meta=dict(source="fluid-soundfont-gm (FluidR3_GM.sf2)", voice=f"GM program {prog}",
                                       text="", pitch=int(p), velocity=vel, note_seconds=dur, program=prog,
                                       preset=preset, samples=";".join(samples))))
    return jobs


WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
         "yes", "no", "hello", "goodbye", "stop", "go"]
ASTERISK_FILES = {**{w: f"digits/{i}.wav" for i, w in enumerate(WORDS[:10])},
                  "hello": "hello.wav", "goodbye": "goodbye.wav"}
# The recorded person behind each flite / festival voice (two voices may model one person: flite's slt and festival's
# cmu_us_slt_arctic_hts are both CMU ARCTIC slt, flite's kal16 and festival's kal_diphone both Kevin Lenzo) and the
# prompts' speaker. An espeak-ng voice is formant synthesis: its speaker is "espeak-ng:<voice>+<variant>".
SPEAKER_OF = {("flite", "awb"): "awb", ("flite", "rms"): "rms", ("flite", "slt"): "slt", ("flite", "kal16"): "kal",
              ("festival", "kal_diphone"): "kal", ("festival", "ked_diphone"): "ked",
              ("festival", "cmu_us_slt_arctic_hts"): "slt", ("asterisk", "Allison"): "allison"}
# No leak into the pre-training pool: keywords and languages (every class, so train and test classes sound alike) use
# only these voices and espeak-ng variants; the speakers set's val/test voices (flite rms, festival ked_diphone and
# the espeak-ng variants m6 m7 m8 f4 f5) are heard in their own class only. See check_voices.
FLITE_VOICES = ["awb", "slt", "kal16"]  # kal16: flite's kal voice at 16 kHz (plain "kal" is 8 kHz)
FESTIVAL_VOICES = ["kal_diphone", "cmu_us_slt_arctic_hts"]
ESPEAK_ACCENTS = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd",
                  "en-029", "en-us-nyc"]
POOL_VARIANTS = ["m1", "m2", "m3", "m4", "m5", "f1", "f2", "f3", "klatt2", "klatt4"]
KEYWORD_ESPEAK = 10  # every accent once, two of them again with another variant


def speech_meta(tool, voice, text, variant="", source=None, **kw):
    "What made a speech clip, with what the leak test compares: speaker, espeak-ng variant, language."
    speaker = f"espeak-ng:{voice}+{variant}" if tool == "espeak-ng" else SPEAKER_OF[(tool, voice)]
    language = voice.split("-")[0] if tool == "espeak-ng" else "en"
    return dict(source=source or tool, voice=voice, variant=variant, speaker=speaker, language=language, text=text, **kw)


def keyword_jobs():
    jobs = []
    for w in WORDS:
        g = rng_for("keywords", w)
        for v in FLITE_VOICES:
            jobs.append(dict(cls=w, clip=f"{w}_flite_{v}", tool="flite", args=(w, v), meta=speech_meta("flite", v, w)))
        for v in FESTIVAL_VOICES:
            jobs.append(dict(cls=w, clip=f"{w}_festival_{v}", tool="festival", args=(w + ".", v),
                             meta=speech_meta("festival", v, w)))
        accents = [*g.permutation(ESPEAK_ACCENTS), *g.permutation(ESPEAK_ACCENTS)[:KEYWORD_ESPEAK - len(ESPEAK_ACCENTS)]]
        used = set()
        for a in map(str, accents):
            var = str(g.choice([v for v in POOL_VARIANTS if (a, v) not in used]))
            s, p = int(g.integers(130, 191)), int(g.integers(30, 71))
            used.add((a, var))
            jobs.append(dict(cls=w, clip=f"{w}_espeak_{a}_{var}_s{s}_p{p}", tool="espeak-ng", args=(w, f"{a}+{var}", s, p),
                             meta=speech_meta("espeak-ng", a, w, var, speed=s, pitch=p)))
        if w in ASTERISK_FILES:
            jobs.append(dict(cls=w, clip=f"{w}_asterisk_allison", tool="asterisk", args=(ASTERISK / ASTERISK_FILES[w],),
                             meta=speech_meta("asterisk", "Allison", w, source="asterisk-core-sounds-en-wav "
                                              "(real recording, Allison Smith)", asterisk_file=ASTERISK_FILES[w])))
    return jobs


# Sentences written for this benchmark (no third-party text).
SENTENCES_EN = [
    "The old man walked slowly along the river this morning.",
    "My sister bought fresh bread and cheese at the market.",
    "It will probably rain tomorrow, so take an umbrella.",
    "The children are playing football in the big garden behind the school.",
    "We have to catch the early train to the city.",
    "Please close the window, it is very cold tonight.",
    "The library opens at eight o'clock every day.",
    "He writes a long letter to his friend every week.",
    "Our neighbours painted their kitchen a bright yellow.",
    "The museum was full of tourists on Sunday afternoon.",
    "She forgot her keys on the table near the door.",
    "A small boat drifted quietly across the lake.",
    "The soup needs a little more salt and pepper.",
    "They planted four apple trees behind the house.",
    "Turn left at the bakery and walk to the bridge.",
    "The meeting has been moved to Thursday at noon.",
]
# speaker class -> (tool, voice, espeak speed, espeak pitch): espeak voices get a fixed speed/pitch (part of the voice)
SPEAKERS = {
    "flite_awb": ("flite", "awb"), "flite_rms": ("flite", "rms"), "flite_slt": ("flite", "slt"),
    "flite_kal16": ("flite", "kal16"),
    "festival_kal": ("festival", "kal_diphone"), "festival_ked": ("festival", "ked_diphone"),
    "festival_slt_hts": ("festival", "cmu_us_slt_arctic_hts"),
    "espeak_en-us_m3": ("espeak-ng", "en-us+m3", 165, 45),
    "espeak_en-gb-scotland_m6": ("espeak-ng", "en-gb-scotland+m6", 160, 40),
    "espeak_en-029_f4": ("espeak-ng", "en-029+f4", 175, 55),
    "espeak_en-gb-x-rp_m7": ("espeak-ng", "en-gb-x-rp+m7", 155, 35),
    "espeak_en-us-nyc_f5": ("espeak-ng", "en-us-nyc+f5", 180, 65),
    "espeak_en-gb-x-gbclan_m8": ("espeak-ng", "en-gb-x-gbclan+m8", 170, 50),
}
SPEAKER_CLIPS = 8


def speaker_jobs():
    jobs = []
    for name, (tool, voice, *sp) in SPEAKERS.items():
        g = rng_for("speakers", name)
        for i in sorted(g.permutation(len(SENTENCES_EN))[:SPEAKER_CLIPS]):
            text = SENTENCES_EN[i]
            args = (text, voice, *sp) if tool == "espeak-ng" else (text, voice)
            extra = dict(speed=sp[0], pitch=sp[1]) if sp else {}
            base, _, var = voice.partition("+")
            jobs.append(dict(cls=name, clip=f"{name}_s{i:02d}", tool=tool, args=args,
                             meta=speech_meta(tool, base, text, var, **extra)))
    return jobs


# The same eight sentences (SENTENCES_EN[:8]) translated for this benchmark; espeak-ng voice -> sentences.
LANG_SENTENCES = {
    "en": SENTENCES_EN[:8],
    "de": ["Der alte Mann ging heute Morgen langsam am Fluss entlang.",
           "Meine Schwester hat auf dem Markt frisches Brot und Käse gekauft.",
           "Morgen wird es wahrscheinlich regnen, also nimm einen Schirm mit.",
           "Die Kinder spielen im großen Garten hinter der Schule Fußball.",
           "Wir müssen den frühen Zug in die Stadt nehmen.",
           "Bitte schließ das Fenster, heute Nacht ist es sehr kalt.",
           "Die Bibliothek öffnet jeden Tag um acht Uhr.",
           "Er schreibt seinem Freund jede Woche einen langen Brief."],
    "fr": ["Le vieil homme a marché lentement le long de la rivière ce matin.",
           "Ma sœur a acheté du pain frais et du fromage au marché.",
           "Il va probablement pleuvoir demain, alors prends un parapluie.",
           "Les enfants jouent au football dans le grand jardin derrière l'école.",
           "Nous devons prendre le premier train pour la ville.",
           "Ferme la fenêtre, s'il te plaît, il fait très froid ce soir.",
           "La bibliothèque ouvre à huit heures tous les jours.",
           "Il écrit une longue lettre à son ami chaque semaine."],
    "es": ["El anciano caminó despacio junto al río esta mañana.",
           "Mi hermana compró pan fresco y queso en el mercado.",
           "Probablemente lloverá mañana, así que lleva un paraguas.",
           "Los niños están jugando al fútbol en el gran jardín detrás de la escuela.",
           "Tenemos que tomar el primer tren a la ciudad.",
           "Por favor, cierra la ventana, esta noche hace mucho frío.",
           "La biblioteca abre a las ocho todos los días.",
           "Él escribe una carta larga a su amigo cada semana."],
    "it": ["Il vecchio ha camminato lentamente lungo il fiume stamattina.",
           "Mia sorella ha comprato pane fresco e formaggio al mercato.",
           "Domani probabilmente pioverà, quindi prendi un ombrello.",
           "I bambini giocano a calcio nel grande giardino dietro la scuola.",
           "Dobbiamo prendere il primo treno per la città.",
           "Per favore, chiudi la finestra, stasera fa molto freddo.",
           "La biblioteca apre alle otto ogni giorno.",
           "Lui scrive una lunga lettera al suo amico ogni settimana."],
    "pt": ["O velho caminhou devagar ao longo do rio esta manhã.",
           "A minha irmã comprou pão fresco e queijo no mercado.",
           "Amanhã provavelmente vai chover, por isso leva um guarda-chuva.",
           "As crianças estão a jogar futebol no grande jardim atrás da escola.",
           "Temos de apanhar o primeiro comboio para a cidade.",
           "Por favor, fecha a janela, esta noite está muito frio.",
           "A biblioteca abre às oito horas todos os dias.",
           "Ele escreve uma longa carta ao seu amigo todas as semanas."],
    "nl": ["De oude man liep vanochtend langzaam langs de rivier.",
           "Mijn zus kocht vers brood en kaas op de markt.",
           "Morgen gaat het waarschijnlijk regenen, dus neem een paraplu mee.",
           "De kinderen spelen voetbal in de grote tuin achter de school.",
           "We moeten de vroege trein naar de stad nemen.",
           "Doe alsjeblieft het raam dicht, het is vannacht erg koud.",
           "De bibliotheek gaat elke dag om acht uur open.",
           "Hij schrijft elke week een lange brief aan zijn vriend."],
    "sv": ["Den gamle mannen gick långsamt längs floden i morse.",
           "Min syster köpte färskt bröd och ost på torget.",
           "Det kommer nog att regna i morgon, så ta med ett paraply.",
           "Barnen spelar fotboll i den stora trädgården bakom skolan.",
           "Vi måste ta det tidiga tåget till staden.",
           "Stäng fönstret, är du snäll, det är mycket kallt i kväll.",
           "Biblioteket öppnar klockan åtta varje dag.",
           "Han skriver ett långt brev till sin vän varje vecka."],
    "da": ["Den gamle mand gik langsomt langs floden i morges.",
           "Min søster købte frisk brød og ost på markedet.",
           "Det regner nok i morgen, så tag en paraply med.",
           "Børnene spiller fodbold i den store have bag skolen.",
           "Vi skal nå det tidlige tog ind til byen.",
           "Luk venligst vinduet, det er meget koldt i aften.",
           "Biblioteket åbner klokken otte hver dag.",
           "Han skriver et langt brev til sin ven hver uge."],
    "cs": ["Starý muž dnes ráno pomalu kráčel podél řeky.",
           "Moje sestra koupila na trhu čerstvý chléb a sýr.",
           "Zítra bude asi pršet, tak si vezmi deštník.",
           "Děti hrají fotbal na velké zahradě za školou.",
           "Musíme stihnout ranní vlak do města.",
           "Zavři prosím okno, dnes v noci je velká zima.",
           "Knihovna otevírá každý den v osm hodin.",
           "Každý týden píše svému příteli dlouhý dopis."],
    "fi": ["Vanha mies käveli tänä aamuna hitaasti joen vartta.",
           "Siskoni osti torilta tuoretta leipää ja juustoa.",
           "Huomenna sataa luultavasti, joten ota sateenvarjo mukaan.",
           "Lapset pelaavat jalkapalloa koulun takana olevassa isossa puutarhassa.",
           "Meidän täytyy ehtiä aikaiseen junaan kaupunkiin.",
           "Sulje ikkuna, ole hyvä, tänä yönä on todella kylmä.",
           "Kirjasto aukeaa joka päivä kello kahdeksan.",
           "Hän kirjoittaa ystävälleen pitkän kirjeen joka viikko."],
    "hu": ["Az öreg ember ma reggel lassan sétált a folyó mentén.",
           "A nővérem friss kenyeret és sajtot vett a piacon.",
           "Holnap valószínűleg esni fog, ezért vigyél esernyőt.",
           "A gyerekek az iskola mögötti nagy kertben fociznak.",
           "El kell érnünk a korai vonatot a városba.",
           "Kérlek, csukd be az ablakot, ma éjjel nagyon hideg van.",
           "A könyvtár minden nap nyolc órakor nyit.",
           "Minden héten hosszú levelet ír a barátjának."],
    "tr": ["Yaşlı adam bu sabah nehir boyunca yavaşça yürüdü.",
           "Kız kardeşim pazardan taze ekmek ve peynir aldı.",
           "Yarın muhtemelen yağmur yağacak, o yüzden şemsiye al.",
           "Çocuklar okulun arkasındaki büyük bahçede futbol oynuyor.",
           "Şehre giden erken treni yakalamamız gerekiyor.",
           "Lütfen pencereyi kapat, bu gece hava çok soğuk.",
           "Kütüphane her gün saat sekizde açılıyor.",
           "Her hafta arkadaşına uzun bir mektup yazıyor."],
    "ru": ["Сегодня утром старик медленно шёл вдоль реки.",
           "Моя сестра купила на рынке свежий хлеб и сыр.",
           "Завтра, наверное, будет дождь, так что возьми зонт.",
           "Дети играют в футбол в большом саду за школой.",
           "Нам нужно успеть на ранний поезд в город.",
           "Закрой, пожалуйста, окно, сегодня ночью очень холодно.",
           "Библиотека открывается каждый день в восемь часов.",
           "Каждую неделю он пишет длинное письмо своему другу."],
    "el": ["Ο γέρος περπάτησε αργά δίπλα στο ποτάμι σήμερα το πρωί.",
           "Η αδερφή μου αγόρασε φρέσκο ψωμί και τυρί στην αγορά.",
           "Αύριο μάλλον θα βρέξει, οπότε πάρε μια ομπρέλα.",
           "Τα παιδιά παίζουν ποδόσφαιρο στον μεγάλο κήπο πίσω από το σχολείο.",
           "Πρέπει να προλάβουμε το πρωινό τρένο για την πόλη.",
           "Κλείσε το παράθυρο, σε παρακαλώ, απόψε κάνει πολύ κρύο.",
           "Η βιβλιοθήκη ανοίγει στις οκτώ κάθε μέρα.",
           "Γράφει ένα μακρύ γράμμα στον φίλο του κάθε εβδομάδα."],
    "id": ["Pria tua itu berjalan perlahan di sepanjang sungai pagi ini.",
           "Kakak saya membeli roti segar dan keju di pasar.",
           "Besok mungkin akan hujan, jadi bawalah payung.",
           "Anak-anak sedang bermain sepak bola di kebun besar di belakang sekolah.",
           "Kita harus naik kereta pagi ke kota.",
           "Tolong tutup jendelanya, malam ini sangat dingin.",
           "Perpustakaan buka setiap hari pukul delapan.",
           "Dia menulis surat panjang kepada temannya setiap minggu."],
}
LANG_VARIANTS = [v for v in POOL_VARIANTS if not v.startswith("klatt")]  # pool voices only (see FLITE_VOICES)
LANG_CLIPS = 8


def language_jobs():
    jobs = []
    for lang, sents in LANG_SENTENCES.items():
        g = rng_for("languages", lang)
        order = list(g.permutation(len(sents)))  # each clip another sentence, voice variant, speed and pitch
        order += list(g.permutation(len(sents)))[: max(0, LANG_CLIPS - len(sents))]  # more clips than sentences: repeats
        for i, si in enumerate(order):
            var, s, p = str(g.choice(LANG_VARIANTS)), int(g.integers(135, 176)), int(g.integers(30, 71))
            jobs.append(dict(cls=lang, clip=f"{lang}_{i:02d}_s{si}_{var}", tool="espeak-ng",
                             args=(sents[si], f"{lang}+{var}", s, p),
                             meta=speech_meta("espeak-ng", lang, sents[si], var, speed=s, pitch=p)))
    return jobs


SYNTH_NOTE = ("Synthetic speech (espeak-ng, flite and festival text-to-speech){}: "
              "it is cleaner and less varied than recorded speech.")
SETS = {
    "instruments": dict(
        jobs=instrument_jobs, top_db=50, max_s=2.0, min_s=0.2, piece_seconds=1.0, synthetic=False,
        description="Real recordings: single notes of the sampled instruments of the FluidR3 General MIDI "
                    "soundfont (fluid-soundfont-gm), rendered by fluidsynth. Classes are GM programs; clips are "
                    "notes of different pitch, velocity and length (NSynth-like).",
        train=["acoustic_grand_piano", "drawbar_organ", "church_organ", "acoustic_guitar_nylon",
               "overdriven_guitar", "acoustic_bass", "violin", "timpani", "choir_aahs", "trumpet",
               "french_horn", "oboe", "clarinet", "steel_drums"],
        val=["vibraphone", "electric_bass_finger", "orchestral_harp", "alto_sax"],
        test=["harpsichord", "xylophone", "accordion", "cello", "trombone", "flute"]),
    "keywords": dict(
        jobs=keyword_jobs, top_db=40, max_s=1.5, min_s=0.2, piece_seconds=1.0, synthetic=True,
        description=SYNTH_NOTE.format(", plus one real recording per word from the asterisk prompt set where it "
                                      "has the word") + " Classes are English words; clips are voices, "
                                      "accents and voice variants (SpeechCommands-like).",
        # words with homophones (to/too, for, ate, won, know) or common in other words (ago, going) train: no pool
        # sentence may say a val/test word (SENTENCES_EN avoid them)
        train=["zero", "one", "two", "four", "eight", "hello", "no", "go"],
        val=["seven", "goodbye", "six"],
        test=["three", "five", "nine", "yes", "stop"]),
    "speakers": dict(
        jobs=speaker_jobs, top_db=40, max_s=5.0, min_s=2.0, piece_seconds=1.0, synthetic=True,
        description=SYNTH_NOTE.format("") + " Classes are voices; clips are different English sentences, 2-5 s "
                    "(VoxCeleb-like). flite_slt and festival_slt_hts model the same CMU ARCTIC speaker, as do "
                    "flite_kal16 and festival_kal (Kevin Lenzo); each pair stays in one split. The val and test voices "
                    "are heard in no other class of the benchmark.",
        train=["flite_awb", "flite_slt", "festival_slt_hts", "flite_kal16", "festival_kal",
               "espeak_en-us_m3"],
        val=["espeak_en-gb-scotland_m6", "espeak_en-029_f4"],
        test=["flite_rms", "festival_ked", "espeak_en-gb-x-rp_m7", "espeak_en-us-nyc_f5",
              "espeak_en-gb-x-gbclan_m8"]),
    "languages": dict(
        jobs=language_jobs, top_db=40, max_s=5.0, min_s=2.0, piece_seconds=1.0, synthetic=True,
        description="Synthetic speech (espeak-ng): it is cleaner and less varied than recorded speech. Classes are "
                    "languages; clips are different sentences (the same eight sentences translated) spoken with "
                    "different voice variants, speeds and pitches, 2-5 s (CommonVoice-like).",
        train=["en", "de", "fr", "it", "fi", "tr", "ru"],
        val=["da", "el", "id"],
        test=["es", "pt", "nl", "sv", "cs", "hu"]),
}


# --------------------------------------------------------------------------- driver

def check_voices():
    """The pre-training pool (every clip of the train classes) must not hold a val/test class's identity: a speakers
    val/test speaker or espeak-ng variant, a keywords val/test word, a languages val/test language.
    tests/test_data_leak.py checks the written metadata; this catches a bad edit of the tables before rendering."""
    sp, kw, la = SETS["speakers"], SETS["keywords"], SETS["languages"]
    ident = lambda c: (SPEAKER_OF.get(SPEAKERS[c][:2], f"espeak-ng:{SPEAKERS[c][1]}"), SPEAKERS[c][1].partition("+")[2])
    pool_speakers = {SPEAKER_OF[("flite", v)] for v in FLITE_VOICES} | {SPEAKER_OF[("festival", v)] for v in FESTIVAL_VOICES}
    pool_speakers |= {SPEAKER_OF[("asterisk", "Allison")]} | {ident(c)[0] for c in sp["train"]}
    pool_variants = (set(POOL_VARIANTS) | set(LANG_VARIANTS) | {ident(c)[1] for c in sp["train"]}) - {""}
    for c in sp["val"] + sp["test"]:
        who, var = ident(c)
        assert who not in pool_speakers and var not in pool_variants, f"speakers/{c} is heard in the pool"
    texts = [t for c in sp["train"] for t in SENTENCES_EN] + [t for c in la["train"] for t in LANG_SENTENCES[c]]
    said = {tok for t in texts for tok in re.findall(r"\w+", t.lower())}
    for w in kw["val"] + kw["test"]:
        assert not any(tok.startswith(w) for tok in said), f"keywords/{w} is said in a pool sentence"
    assert "en" in la["train"], "keywords and speakers are English: English must be a train language"


def make_clip(job, cfg) -> dict:
    with tempfile.TemporaryDirectory(prefix="minibench_") as tmp:
        x = RENDER[job["tool"]](Path(tmp), *job["args"])
    if not np.isfinite(x).all() or np.abs(x).max() < 1e-4:
        raise RuntimeError(f"{job['clip']}: {job['tool']} produced silence")
    x = finish(x, cfg["top_db"], cfg["max_s"])
    dur = len(x) / SR
    rel = Path("audio") / job["cls"] / f"{job['clip']}.flac"
    return dict(file=str(rel), cls=job["cls"], tool=job["tool"], seconds=round(dur, 3), x=x, **job["meta"])


def make_set(name, cfg, pool) -> list[dict]:
    out = DATA / name
    if out.exists(): shutil.rmtree(out)
    jobs = cfg["jobs"]()
    classes = sorted({j["cls"] for j in jobs})
    split = cfg["train"] + cfg["val"] + cfg["test"]
    assert sorted(split) == classes and len(set(split)) == len(split), f"{name}: split does not cover the classes"
    rows = list(pool.map(lambda j: make_clip(j, cfg), jobs))
    short = [f"{r['file']} ({r['seconds']:.2f} s)" for r in rows if r["seconds"] < cfg["min_s"]]
    if short: raise RuntimeError(f"{name}: clips shorter than {cfg['min_s']} s (use longer texts):\n  " + "\n  ".join(short))
    for r in rows:
        x = r.pop("x")
        save_audio(out / r["file"], x, SR, subtype="PCM_16")
    (out / "split.json").write_text(json.dumps(dict(
        name=name, description=cfg["description"], synthetic=cfg["synthetic"], sample_rate=SR,
        piece_seconds=cfg["piece_seconds"], train=cfg["train"], val=cfg["val"], test=cfg["test"]), indent=1) + "\n")
    keys = ["file", "cls", "tool", "source", "voice", "text", "seconds"]
    keys += sorted({k for r in rows for k in r} - set(keys))
    with open(out / "metadata.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys, lineterminator="\n")
        w.writeheader()
        w.writerows(sorted(rows, key=lambda r: r["file"]))
    return rows


def du(path: Path, pattern: str = "*") -> int:
    "Bytes of the files under `path` matching `pattern`."
    return sum(p.stat().st_size for p in path.rglob(pattern) if p.is_file())


def counts_table(results) -> str:
    lines = ["| set | real or synthetic | classes (train / val / test) | clips | clips per class | clip seconds (min / mean / max) | minutes | size |",
             "|---|---|---|---|---|---|---|---|"]
    tot_clips = tot_s = tot_b = 0
    for name, rows in results.items():
        cfg = SETS[name]
        per = {}
        for r in rows: per[r["cls"]] = per.get(r["cls"], 0) + 1
        secs = np.array([r["seconds"] for r in rows])
        size = du(DATA / name, "*.flac")
        tot_clips, tot_s, tot_b = tot_clips + len(rows), tot_s + secs.sum(), tot_b + size
        lines.append(f"| {name} | {'synthetic' if cfg['synthetic'] else 'real'} | {len(per)} ({len(cfg['train'])} / "
                     f"{len(cfg['val'])} / {len(cfg['test'])}) | {len(rows)} | {min(per.values())}-{max(per.values())} | "
                     f"{secs.min():.2f} / {secs.mean():.2f} / {secs.max():.2f} | {secs.sum() / 60:.1f} | {size / 1e6:.2f} MB |")
    pool = [r for name, rows in results.items() for r in rows if r["cls"] in SETS[name]["train"]]
    lines.append(f"| **all** | | {sum(len(SETS[n]['train'] + SETS[n]['val'] + SETS[n]['test']) for n in results)} | "
                 f"{tot_clips} | | | {tot_s / 60:.1f} | {tot_b / 1e6:.2f} MB |")
    lines.append("")
    lines.append(f"Pre-training pool (every clip of the train classes of all sets): {len(pool)} clips, "
                 f"{sum(r['seconds'] for r in pool) / 60:.1f} minutes.")
    return "\n".join(lines)


def update_readme(table: str):
    readme = DATA / "README.md"
    start, end = "<!-- counts:start -->", "<!-- counts:end -->"
    txt = readme.read_text() if readme.exists() else ""
    if start in txt and end in txt:
        txt = txt[: txt.index(start) + len(start)] + "\n" + table + "\n" + txt[txt.index(end):]
        readme.write_text(txt)
    else:
        print(f"note: {readme} has no {start} ... {end} block; paste the table by hand")


def main(argv=None):
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("sets", nargs="*", default=list(SETS), help=f"sets to make (default: all of {list(SETS)})")
    ap.add_argument("--workers", type=int, default=4, help="parallel synthesiser processes")
    a = ap.parse_args(argv)
    missing = [f"{t} (Debian package {p})" for t, p in TOOLS.items() if shutil.which(t) is None]
    missing += [f"{p} (Debian package)" for p, f in (("fluid-soundfont-gm", SOUNDFONT), ("asterisk-core-sounds-en-wav", ASTERISK))
                if not f.exists()]
    check_voices()
    if missing: sys.exit("missing: " + ", ".join(missing) + "\nsee the top of data/make_minibench.py for the apt-get line")
    t0 = time.time()
    results = {}
    with ThreadPoolExecutor(a.workers) as pool:
        for name in a.sets:
            t = time.time()
            results[name] = make_set(name, SETS[name], pool)
            print(f"{name}: {len(results[name])} clips in {time.time() - t:.1f} s", flush=True)
    if set(a.sets) == set(SETS):
        # keep the README's table for all sets in SETS order
        table = counts_table({n: results[n] for n in SETS})
        update_readme(table)
        print(table)
    print(f"total generation time {time.time() - t0:.1f} s; data/ is {du(DATA) / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
