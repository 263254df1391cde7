"""Bad data and bad settings (issue 21): split entries that leave the data root, classes that vanish, nonsense
sample rates and crops, inputs passed over in silence, long clips and memory, hints that point nowhere. One test
per item of the issue, named after it; each failed on the code before the fix."""
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from mtslvr.audio import AudioError, save_audio
from mtslvr.config import ConfigError
from mtslvr.data import AudioFolder, DataWarning, load_split, part_folders, data_source

ROOT = Path(__file__).resolve().parent.parent


def tone(seconds=0.5, f0=300.0, sr=16000):
    t = torch.arange(int(seconds * sr)) / sr
    return 0.3 * torch.sin(2 * torch.pi * f0 * t)


def a_set(root: Path, counts: dict, test=None, piece_seconds=0.25, train=()) -> Path:
    "A one-set data folder: audio/<class>/<i>.flac with counts[class] clips, and its split file."
    for k, (c, n) in enumerate(counts.items()):
        (root / "audio" / c).mkdir(parents=True, exist_ok=True)
        for i in range(n): save_audio(root / "audio" / c / f"{i}.flac", tone(0.5, 200 + 40 * k + 5 * i))
    (root / "split.json").write_text(json.dumps(dict(name=root.name, train=list(train), val=[], test=test or [c for c in counts if c not in train],
                                                     piece_seconds=piece_seconds)))
    return root


def test_split_class_names_cannot_leave_the_data_root(tmp_path):
    secret = tmp_path / "elsewhere" / "secret"
    for i in range(3): save_audio(secret / f"{i}.flac", tone())
    s = a_set(tmp_path / "toy", {"a": 3, "b": 3}, test=["a", "b", "../../elsewhere/secret"])
    with pytest.raises(ValueError, match=r"split.json: field 'test': class '../../elsewhere/secret' is not a folder name"):
        part_folders(data_source(s), "test")
    (s / "split.json").write_text(json.dumps(dict(name="toy", train=[], val=[], test=["a", str(secret)])))
    with pytest.raises(ValueError, match="is not a folder name: a class is a folder directly inside the set's root"):
        load_split(s / "split.json")
    from mtslvr.cli import main
    assert main(["evaluate", "--set", f"data={s}", "--set", f"out_dir={tmp_path / 'e'}", "--quiet"]) == 2
    with pytest.raises(ValueError, match="class '../elsewhere' is not a folder name"):   # the Python API, the same rule
        AudioFolder(s / "audio", classes=["a", "../elsewhere"])


def test_dropped_classes_are_named_and_the_same_for_every_shot_count(tmp_path, capsys):
    s = a_set(tmp_path / "toy", {f"c{i}": 6 for i in range(5)} | {"few": 3, "tr": 2}, test=[f"c{i}" for i in range(5)] + ["few", "empty", "bad"],
              train=["tr"])   # a train class: what the random-init row's front-end statistics are fitted on
    (s / "audio" / "empty").mkdir()
    (s / "audio" / "bad").mkdir()
    for i in range(2): (s / "audio" / "bad" / f"{i}.flac").write_bytes(b"fLaC not really")
    from mtslvr.evaluate import EvalConfig, run_evaluation
    said = []
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        res = run_evaluation(EvalConfig(data=str(s), n_tasks=10, shots=(1, 5), out_dir=str(tmp_path / "e"), device="cpu",
                                        skip_unreadable=True),
                             progress=False, out=said.append)
    line = next(l for l in said if l.strip().startswith("toy:"))
    assert "5 test classes" in line and "few (3 clips < 5-shot + 1 query = 6)" in line, line
    assert "empty (an empty folder: no audio files (the data scan))" in line and "bad (all 2 files skipped: 2 unreadable" in line
    assert any("class(es) left out, without a usable clip" in str(x.message) for x in w if x.category is DataWarning)
    rec = json.loads((tmp_path / "e" / "results.json").read_text())["sets"]["toy"]
    assert rec["classes"] == [f"c{i}" for i in range(5)] and set(rec["dropped"]) == {"few", "empty", "bad"}
    assert all(t.title.startswith("5-way") for t in res["tables"].values())
    with pytest.raises(ConfigError, match="set 'toy': 0 of its test classes have the 8 clips a 5-way 7-shot task"):
        run_evaluation(EvalConfig(data=str(s), n_tasks=10, shots=(1, 7), out_dir=str(tmp_path / "e2"), device="cpu",
                                  skip_unreadable=True), progress=False)
    # without skip_unreadable, an unreadable evaluation clip is an error naming it (evaluation sets are not filtered)
    with pytest.raises(ConfigError, match=r"bad/0\.flac"):
        run_evaluation(EvalConfig(data=str(s), n_tasks=10, out_dir=str(tmp_path / "e3"), device="cpu"), progress=False)


def test_nonsense_sample_rate_and_clip_seconds_are_rejected(capsys):
    from mtslvr.cli import main
    from mtslvr.pretrain import PretrainConfig
    with pytest.raises(ConfigError, match="'sample_rate': got 100; expected at least 8000 Hz"):
        PretrainConfig(sample_rate=100)
    with pytest.raises(ConfigError, match=r"'clip_seconds': got 0.001; expected at least 0.064 s: a crop must hold one window"):
        PretrainConfig(clip_seconds=0.001)
    with pytest.raises(ConfigError, match=r"at least 0.128 s"):
        PretrainConfig(sample_rate=8000, clip_seconds=0.1)
    assert main(["pretrain", "--set", "sample_rate=100"]) == 2 and "at least 8000 Hz" in capsys.readouterr().err
    PretrainConfig(sample_rate=8000, clip_seconds=0.128)                       # the minimum itself is fine


def test_dangling_links_aiff_and_duplicate_keys_are_not_ignored(tmp_path):
    d = tmp_path / "set"
    for c in ("a", "b"):
        for i in range(2): save_audio(d / c / f"{i}.flac", tone(0.5, 300 + 50 * i))
    save_audio(d / "a" / "more.aiff", tone(0.5, 500))
    import soundfile as sf
    sf.write(d / "b" / "more.aif", tone(0.5, 600).numpy(), 16000, format="AIFF")   # (.aif: its format by name)
    os.symlink(d / "moved-away.wav", d / "b" / "link.wav")
    (d / "b" / "phone.m4a").write_bytes(b"\0" * 64)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        f = AudioFolder(d)
    assert f.class_counts().tolist() == [3, 3]                                   # the AIFF files are read
    msg = " ".join(str(x.message) for x in w)
    assert "skipped 2 of 8 files: 2 unreadable (link.wav, phone.m4a)" in msg, msg
    details = {p.name: why for p, _, why in f.skipped}
    assert details == {"link.wav": f"a link to {d / 'moved-away.wav'}, which does not exist",
                       "phone.m4a": "libsndfile cannot decode .m4a files: convert it (e.g. to FLAC)"}
    (tmp_path / "c.yaml").write_text("steps: 3\nlr: 1e-3\nsteps: 30\n")
    from mtslvr.pretrain import PretrainConfig
    with pytest.raises(ConfigError, match="line 3: key 'steps' is given twice"):
        PretrainConfig.load(tmp_path / "c.yaml")
    (tmp_path / "split.json").write_text('{"train": ["a"], "val": [], "test": ["b"], "test": ["a"]}')
    with pytest.raises(ValueError, match="key 'test' is given twice"):
        load_split(tmp_path / "split.json")


PROBE = """
import sys, torch
from mtslvr.data import AudioFolder
from mtslvr.features import extract_features
from mtslvr.frontend import Spectrogram3C
from mtslvr.models import AudioEncoder, build_encoder
def kb(field): return int(next(l for l in open("/proc/self/status") if l.startswith(field)).split()[1])
torch.manual_seed(0)
model = AudioEncoder(Spectrogram3C(sample_rate=8000), build_encoder("mt_parallel", width=4, depths=(1, 1, 1, 1), out_dim=16))
extract_features(model, AudioFolder(sys.argv[2], sample_rate=8000, scan="header"), 1.0, batch_size=16)   # warm-up: a short clip
folder = AudioFolder(sys.argv[1], sample_rate=8000, scan="header")
open("/proc/self/clear_refs", "w").write("5")   # the peak resident size starts again from now (ru_maxrss cannot)
base = kb("VmRSS:")
feats = extract_features(model, folder, 1.0, batch_size=16)
print(feats.pieces.shape[0], (kb("VmHWM:") - base) / 1024)
"""


def test_feature_memory_is_bounded_by_batch_size(tmp_path):
    "Peak memory beyond the decoded waveform must not grow with the clip: a 5- and a 20-minute clip, 16 pieces a batch."
    for minutes in (0.05, 5, 20):   # (8 kHz: half the work of 16 kHz for the same number of pieces)
        t = torch.arange(int(minutes * 60 * 8000)) / 8000
        save_audio(tmp_path / f"m{minutes}" / "c" / "long.wav", 0.3 * torch.sin(2 * torch.pi * 220 * t * (1 + 0.01 * t)),
                   sample_rate=8000, subtype="PCM_16")
    def peak(minutes):   # the growth of the peak resident size during the extraction, in MB, in a process of its own
        r = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path / f"m{minutes}"), str(tmp_path / "m0.05")],
                           capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert r.returncode == 0, r.stderr
        n, mb = r.stdout.split()
        return int(n), float(mb)
    (n5, mb5), (n20, mb20) = peak(5), peak(20)
    wave_mb = 4 * 8000 * 60 * 15 / 2**20                                       # 15 more minutes of float32 samples
    assert (n5, n20) == (300, 1200)
    assert mb20 - mb5 < 2 * wave_mb, (mb5, mb20, wave_mb)   # all pieces in one pass: 10x the waveform's growth


def test_hints_name_what_to_do_from_where_the_user_is(tmp_path):
    from mtslvr.evaluate import EvalConfig, run_evaluation
    from mtslvr.features import extract_features
    from mtslvr.frontend import Spectrogram3C
    from mtslvr.models import AudioEncoder, ModelFileError, build_encoder
    from mtslvr.pretrain import PretrainConfig, pretrain
    s = a_set(tmp_path / "toy", {f"c{i}": 3 for i in range(5)})
    # a MetaAudio split (a pickle): each command's own option
    arr = np.empty(3, dtype=object); arr[0], arr[1], arr[2] = np.array([]), np.array([]), np.array([f"c{i}" for i in range(5)])
    np.save(tmp_path / "split.npy", arr, allow_pickle=True)
    with pytest.raises(ValueError) as e:
        run_evaluation(EvalConfig(data=str(s / "audio"), split=str(tmp_path / "split.npy"), out_dir=str(tmp_path / "e")))
    assert "--set allow_pickle=true (mtslvr evaluate and invariance)" in str(e.value) and "--allow-pickle (mtslvr splits convert)" in str(e.value)
    # a training checkpoint given as an encoder: no "model key" that is not there
    torch.save({"objective": {}, "optimizer": {}, "state": {}, "scheduler": {}}, tmp_path / "last.pt")
    with pytest.raises(ModelFileError, match="a training checkpoint .*, not an encoder file.*--set resume=true") as e:
        AudioEncoder.load(tmp_path / "last.pt")
    assert "model key" not in str(e.value)
    # a piece length that rounds to nothing, and weights with NaN: the real cause and its fix
    model = AudioEncoder(Spectrogram3C(), build_encoder("cont_only", width=4, depths=(1, 1, 1, 1), out_dim=8))
    folder = AudioFolder(s / "audio")
    with pytest.raises(ValueError, match=r"piece_seconds=1e-05 gives 0 samples at 16000 Hz; a piece needs at least 1024 .*"
                                         r"piece_seconds >= 0.064 \(command line: --set piece_seconds=...\)"):
        extract_features(model, folder, 1e-5)
    with torch.no_grad(): model.encoder.fc["contrastive"].weight.fill_(float("nan"))
    with pytest.raises(ValueError, match="the encoder's weights hold NaN or inf .1 tensor.s., e.g. encoder.fc.contrastive.weight."):
        extract_features(model, folder, 0.25)
    # the skipped-files warning says where the list is for a command-line user too
    (s / "audio" / "c0" / "broken.flac").write_bytes(b"fLaC junk")
    with pytest.warns(DataWarning, match=r"listed in the run's record \(command line: config.json or results.json\)"):
        AudioFolder(s / "audio")
    # an anti-phase stereo file: its mono mix-down is silent, and the message says so
    x = tone(0.5)
    import soundfile as sf
    sf.write(tmp_path / "anti.wav", torch.stack([x, -x], 1).numpy(), 16000)
    from mtslvr.data import scan_files
    assert "its mono mix-down is at or below -60 dBFS, though its channels are not" in scan_files([tmp_path / "anti.wav"])[2][0][2]
    # a pool of one clip: validation would take it
    save_audio(tmp_path / "one" / "only.flac", tone(1.0))
    with pytest.raises(ConfigError, match="the pool has 1 clip.s. and validation takes 1, leaving none to train on: .*val_every=0"):
        pretrain(PretrainConfig(data=str(tmp_path / "one"), out_dir=str(tmp_path / "p"), width=4, out_dim=16, batch_size=2,
                                steps=1, clip_seconds=0.5, device="cpu"), progress=False)
    # a file without read permission is named as such, not as corrupt (run as another user: root reads everything)
    shut = Path(tempfile.mkdtemp()); os.chmod(shut, 0o755)                     # a folder the other user can enter
    try:
        save_audio(shut / "x.flac", tone()); os.chmod(shut / "x.flac", 0)
        script = textwrap.dedent(f"""
            import os
            from mtslvr.audio import AudioError, load_audio
            if os.geteuid() == 0: os.setgid(65534); os.setuid(65534)
            try: load_audio({str(shut / 'x.flac')!r})
            except AudioError as e: print(e)
        """)
        r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
        assert "x.flac: cannot read it: permission denied; check the file's permissions" in r.stdout, r.stdout + r.stderr
    finally:
        import shutil; shutil.rmtree(shut)
