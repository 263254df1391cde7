"""The HEAR 2021 API (`mtslvr.hear`) checked by the competition's own validator, `hearvalidator`.

The validator imports tensorflow at the top but uses it only for tensorflow models (`isinstance(model,
tf.Module)`, `tf.device`); tensorflow is no dependency of mtslvr, so a stand-in module takes its place.
scripts/setup_env.sh installs hearvalidator with --no-deps.
"""
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch

from mtslvr.frontend import Spectrogram3C
from mtslvr.models import AudioEncoder, build_encoder

ROOT = Path(__file__).resolve().parent.parent
VALIDATOR = Path(sys.executable).parent / "hear-validator"
STANDIN_TF = '''"Stand-in for tensorflow: hearvalidator uses it only for tensorflow models."
class Module:  # hearvalidator: isinstance(model, tf.Module) decides between its torch and tensorflow checks
    pass
def device(name):
    raise RuntimeError("this stand-in tensorflow cannot run tensorflow models")
'''


def tiny_encoder_file(path, variant="mt_bn", out_dim=16, **config):
    torch.manual_seed(0)
    enc = AudioEncoder(Spectrogram3C(), build_encoder(variant, width=4, depths=(1, 1, 1, 1), out_dim=out_dim), config=config)
    return enc.save(path)


@pytest.fixture
def standin_tf(monkeypatch):
    "hearvalidator.validate imported in this process with the stand-in tensorflow."
    tf = types.ModuleType("tensorflow")
    exec(STANDIN_TF, tf.__dict__)
    monkeypatch.setitem(sys.modules, "tensorflow", tf)
    monkeypatch.delitem(sys.modules, "hearvalidator.validate", raising=False)
    import hearvalidator.validate as hv
    return hv


def test_hear_validator_command_passes(tmp_path):
    assert VALIDATOR.exists(), f"{VALIDATOR} missing: run scripts/setup_env.sh (it installs hearvalidator --no-deps)"
    model = tiny_encoder_file(tmp_path / "encoder.pt", clip_seconds=0.5)
    (tmp_path / "standin" / "tensorflow").mkdir(parents=True)
    (tmp_path / "standin" / "tensorflow" / "__init__.py").write_text(STANDIN_TF)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "standin"), str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    r = subprocess.run([str(VALIDATOR), "mtslvr.hear", "--model", str(model), "--device", "cpu"],
                       capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert r.stdout.rstrip().endswith("Looks good!")
    assert "Received torch Module: HearModel(mt_bn, width=4" in r.stdout and "window=0.5 s" in r.stdout
    assert "Received embedding of shape: torch.Size([16, 41, 16])" in r.stdout  # 2 s at a 50 ms hop: 0 .. 2000 ms
    assert "Received embedding of shape: torch.Size([8, 16])" in r.stdout
    assert "Interval between timestamps is 50.0ms" in r.stdout
    assert "We suggest a interval" not in r.stderr  # its warning for a hop above 50 ms


@pytest.mark.parametrize("variant, hop_ms", [("cont_only", 50.0), ("mt_simple", 25.0), ("mt_parallel", 12.5)])
def test_validator_passes_every_kind_of_head(standin_tf, tmp_path, monkeypatch, capsys, variant, hop_ms):
    import mtslvr.hear
    path = tiny_encoder_file(tmp_path / "encoder.pt", variant, out_dim=8)
    load = mtslvr.hear.load_model
    monkeypatch.setattr(mtslvr.hear, "load_model", lambda p: load(p, hop_ms=hop_ms, window_seconds=0.25, batch_size=100))
    standin_tf.ValidateModel("mtslvr.hear", str(path), device="cpu")()
    out = capsys.readouterr().out
    assert f"Interval between timestamps is {hop_ms}ms" in out and "scene_embedding_size: 8" in out


def test_validator_catches_a_broken_api(standin_tf, tmp_path, monkeypatch):
    "A control: the validator (with the stand-in) really checks, so the passing tests above can fail."
    import mtslvr.hear
    path = tiny_encoder_file(tmp_path / "encoder.pt")

    right = mtslvr.hear.get_timestamp_embeddings

    def uneven(audio, model):
        emb, ts = right(audio, model)
        return emb, ts + (torch.arange(ts.shape[1]) % 2) * 5.0  # every other timestamp 5 ms late

    load = mtslvr.hear.load_model
    monkeypatch.setattr(mtslvr.hear, "load_model", lambda p: load(p, window_seconds=0.25))
    monkeypatch.setattr(mtslvr.hear, "get_timestamp_embeddings", uneven)
    with pytest.raises(standin_tf.ModelError, match="regular intervals"):
        standin_tf.ValidateModel("mtslvr.hear", str(path), device="cpu")()


def test_validator_without_a_model_file_fails_clearly(standin_tf):
    with pytest.raises(ValueError, match="model_file_path is empty"):
        standin_tf.ValidateModel("mtslvr.hear", "", device="cpu")()
