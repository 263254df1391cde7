"""The few-shot track for any HEAR 2021 module (`--set hear_modules=MODULE[:WEIGHTS]`): a tiny HEAR module written
here at another sample rate beside an mtslvr encoder in one table; `mtslvr.hear` over an encoder file gives the
encoder's own numbers; a module that does not import or lacks a function is exit code 2 naming it."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from dataclasses import replace

from mtslvr.config import ConfigError

from mtslvr.audio import save_audio

ROOT = Path(__file__).resolve().parent.parent
EXE = Path(sys.executable).parent / "mtslvr"

# a HEAR 2021 module at 22.05 kHz: the embedding is a fixed random projection of the mean log-magnitude spectrum
TINYHEAR = '''
import torch
__version__ = "0.1"

class Model(torch.nn.Module):
    sample_rate, scene_embedding_size = 22050, 8
    def __init__(self):
        super().__init__()
        self.register_buffer("proj", torch.randn(129, 8, generator=torch.Generator().manual_seed(0)))

def load_model(model_file_path=""):
    return Model()

def get_scene_embeddings(audio, model):
    spec = torch.stft(audio, 256, window=torch.hann_window(256, device=audio.device), return_complex=True)
    return spec.abs().add(1e-6).log().mean(-1) @ model.proj
'''


def _tones(root, classes=6, clips=3, seconds=1.5, rate=16000):
    t = torch.arange(int(rate * seconds)) / rate
    for i in range(classes):
        for j in range(clips):
            save_audio(root / f"c{i}" / f"{j}.flac", 0.3 * torch.sin(2 * torch.pi * (150 * (i + 1) + 20 * j) * t)
                       + 0.05 * torch.randn(len(t), generator=torch.Generator().manual_seed(10 * i + j)), rate)
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    "A tiny mt_parallel encoder pre-trained for 2 steps (0.5 s crops) on eight tone clips: its encoder.pt."
    from mtslvr.pretrain import PretrainConfig, pretrain
    d, g = tmp_path_factory.mktemp("trained"), torch.Generator().manual_seed(0)
    t = torch.arange(8000) / 16000
    for i in range(8):
        save_audio(d / "pool" / f"clip{i}.flac",
                   (0.3 * torch.sin(2 * torch.pi * (150 + 60 * i) * t) + 0.05 * torch.randn(8000, generator=g)).clamp(-1, 1))
    res = pretrain(PretrainConfig(data=str(d / "pool"), out_dir=str(d / "tiny"), variant="mt_parallel", width=4, depths=(1, 1, 1, 1),
                                  out_dim=16, batch_size=4, steps=2, clip_seconds=0.5, val_every=0, device="cpu", workers=0, seed=3),
                   progress=False)
    return Path(res["encoder"])


@pytest.fixture
def tinyhear(tmp_path, monkeypatch):
    mods = tmp_path / "mods"
    mods.mkdir()
    (mods / "tinyhear.py").write_text(TINYHEAR)
    (mods / "nohear.py").write_text("def load_model(model_file_path=''):\n    return None\n")
    monkeypatch.syspath_prepend(str(mods))
    return mods


def run(*args, mods):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(mods), str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([str(EXE), *args], capture_output=True, text=True, timeout=300, env=env)


def test_a_hear_module_beside_an_encoder_in_one_table(tmp_path, tinyhear, trained):
    "tinyhear (22.05 kHz) and a trained encoder (16 kHz) on the same tasks; the HEAR row is shown, ranked only with rank=all."
    enc, data = trained, _tones(tmp_path / "mine")
    common = ["--set", f"data={data}", "--set", "shots=1", "--set", "n_tasks=30", "--set", "piece_seconds=0.5",
              "--set", "random_init=false", "--set", "hear_modules=tinyhear", "--quiet"]
    r = run("evaluate", str(enc), *common, "--set", f"out_dir={tmp_path / 'run'}", mods=tinyhear)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "sets read at 16000 Hz, 22050 Hz" in r.stdout, r.stdout
    res = json.loads((tmp_path / "run" / "results.json").read_text())
    assert res["hear_modules"]["tinyhear"]["version"] == "0.1" and res["hear_modules"]["tinyhear"]["sample_rate"] == 22050
    acc = torch.load(tmp_path / "run" / "accuracies.pt", weights_only=True)["1"]
    assert acc["tinyhear"]["mine"].shape == (30,) and acc["tinyhear"]["mine"].mean() > 0.3   # tones: separable by spectrum
    md = (tmp_path / "run" / "fewshot_1shot.md").read_text()
    line = next(l for l in md.splitlines() if l.startswith("| tinyhear"))
    assert line.split("|")[-2].strip() == "-" and "| tiny |" in md and "Not ranked" in md and "tinyhear" in md.split("Not ranked")[1], md
    # rank=all (in this process, tinyhear on sys.path): the same tasks, the same numbers, and the HEAR row ranked
    from mtslvr.evaluate import EvalConfig, run_evaluation
    r2 = run_evaluation(EvalConfig(encoders=(str(enc),), hear_modules=("tinyhear",), random_init=False, data=str(data), shots=(1,),
                                   n_tasks=30, piece_seconds=0.5, rank="all", out_dir=str(tmp_path / "run2")), progress=False, out=lambda *a: None)
    line2 = next(l for l in (tmp_path / "run2" / "fewshot_1shot.md").read_text().splitlines() if l.startswith("| tinyhear"))
    assert line2.split("|")[-2].strip() in ("1.00", "2.00", "1.50"), line2
    assert torch.equal(r2["accuracies"][1]["tinyhear"]["mine"], acc["tinyhear"]["mine"])
    assert torch.equal(r2["accuracies"][1]["tiny"]["mine"], acc["tiny"]["mine"])


def test_mtslvr_hear_as_a_module_gives_the_encoders_numbers(tmp_path, trained):
    """mtslvr.hear:ENC.pt == evaluating ENC.pt directly, bit for bit: its scene length is the encoder's clip_seconds (0.5 s)
    = the piece length, so each piece is one scene piece, and it z-normalises each piece as the encoder's pieces are."""
    from mtslvr.evaluate import EvalConfig, run_evaluation
    data = _tones(tmp_path / "mine")   # 1.5 s clips: three pieces each, which vote
    c = EvalConfig(encoders=(str(trained),), hear_modules=(f"mtslvr.hear:{trained}",), random_init=False, data=str(data),
                   shots=(1, 2), n_tasks=40, piece_seconds=0.5, out_dir=str(tmp_path / "run"), rank="all")
    r = run_evaluation(c, progress=False, out=lambda *a: None)
    assert list(r["models"]) == ["tiny", "mtslvr.hear:tiny"]
    for k in (1, 2):
        a, b = r["accuracies"][k]["tiny"]["mine"], r["accuracies"][k]["mtslvr.hear:tiny"]["mine"]
        assert torch.equal(a, b), (k, a.mean(), b.mean())
    w = tmp_path / "other.pt"   # other weights in the HEAR row's file: the run folder refuses them, naming the row
    w.write_bytes(trained.read_bytes())
    run_evaluation(replace(c, encoders=(), hear_modules=(f"mtslvr.hear:{w}",), out_dir=str(tmp_path / "run3")), progress=False, out=lambda *a: None)
    from mtslvr.frontend import Spectrogram3C
    from mtslvr.models import AudioEncoder, build_encoder
    AudioEncoder(Spectrogram3C(), build_encoder("cont_only", width=4, depths=(1, 1, 1, 1), out_dim=16)).save(w)
    with pytest.raises(ConfigError, match=r"other weights of \['mtslvr.hear:other'\]"):
        run_evaluation(replace(c, encoders=(), hear_modules=(f"mtslvr.hear:{w}",), out_dir=str(tmp_path / "run3")), progress=False,
                       out=lambda *a: None)


def test_bad_hear_modules_exit_2_naming_them(tmp_path, tinyhear, capsys):
    "The command's entry point in this process (tinyhear's folder on sys.path): exit code 2, the module and function named."
    from mtslvr.cli import main
    data = _tones(tmp_path / "mine", classes=5, clips=2, seconds=0.5)
    for cmd in ("evaluate", "invariance"):
        for spec, want in (("no_such_hear", ["HEAR module 'no_such_hear' does not import"]),
                           ("nohear", ["HEAR module 'nohear'", "has no function get_scene_embeddings"])):
            code = main([cmd, "--set", f"hear_modules={spec}", "--set", f"data={data}", "--set", f"out_dir={tmp_path / 'run'}", "--quiet"])
            err = capsys.readouterr().err
            assert code == 2 and all(w in err for w in want) and "Traceback" not in err, (cmd, err[-2000:])
    assert not (tmp_path / "run").exists()


def test_invariance_of_a_hear_module(tmp_path, tinyhear, capsys):
    "mtslvr invariance --set hear_modules=tinyhear (the entry point in this process): one row, the scene embeddings' invariance."
    from mtslvr.cli import main
    data = _tones(tmp_path / "mine", classes=4, clips=4, seconds=0.5)
    code = main(["invariance", "--set", "hear_modules=tinyhear", "--set", f"data={data}", "--set", "n_clips=16", "--set", "n_values=2",
                 "--set", "seconds=0.5", "--set", "n_tasks=0", "--set", f"out_dir={tmp_path / 'inv'}"])
    assert code == 0, capsys.readouterr().err[-3000:]
    s = json.loads((tmp_path / "inv" / "summary.json").read_text())
    assert s["models"]["tinyhear"]["config"]["hear_module"] == "tinyhear" and s["clips"] == {"mine": 16}
    assert list(s["covariance"]["tinyhear"]) == ["scene"]
    md = (tmp_path / "inv" / "invariance.md").read_text()
    row = next(l for l in md.splitlines() if "tinyhear" in l)
    vals = [float(v) for v in row.strip("|").split("|")[1:] if v.strip()]
    assert len(vals) >= 7 and all(v >= 0 for v in vals) and max(vals) > 0, md
