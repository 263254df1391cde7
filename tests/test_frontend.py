"""Spectrogram3C inside a saved AudioEncoder: fitted statistics survive the file, in a fresh process."""
import subprocess
import sys
import textwrap

import pytest
import torch

from mtslvr.frontend import FRONTENDS, Spectrogram3C
from mtslvr.models import AudioEncoder, ModelFileError, build_encoder


def _waves(n=4, T=8000, seed=0):
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(T) / 16000
    tones = torch.sin(2 * torch.pi * (200 + 300 * torch.rand(n, 1, generator=g)) * t)
    return tones + 0.1 * torch.randn(n, T, generator=g)


def test_registered_under_its_module_name():
    assert FRONTENDS["mtslvr.frontend.Spectrogram3C"] is Spectrogram3C


def test_frontend_does_not_import_models(root):
    # modules import only modules above them: frontend (04) must not pull in models (06)
    code = "import sys, mtslvr.frontend; assert 'mtslvr.models' not in sys.modules, sorted(sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root)
    assert r.returncode == 0, r.stderr


def test_saved_model_keeps_statistics_in_a_fresh_process(tmp_path, root):
    wav = _waves()
    fe = Spectrogram3C(n_mels=32, hop_length=256).fit_stats([wav[:2], wav[2:]])
    model = AudioEncoder(fe, build_encoder("mt_bn", width=8, depths=(1, 1, 1, 1), out_dim=16)).eval()
    want = model.embed(wav)
    path = model.save(tmp_path / "enc.pt")
    torch.save(wav, tmp_path / "wav.pt")
    # a fresh process that never imported mtslvr.frontend: load() finds the class through the registry
    code = textwrap.dedent(f"""
        import sys, torch
        from mtslvr.models import AudioEncoder
        m = AudioEncoder.load({str(path)!r})
        fe = m.frontend
        assert type(fe).__name__ == "Spectrogram3C" and bool(fe.fitted), fe
        assert fe.get_config()["n_mels"] == 32 and fe.get_config()["hop_length"] == 256
        torch.save(m.embed(torch.load({str(tmp_path / 'wav.pt')!r})), {str(tmp_path / 'out.pt')!r})
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root)
    assert r.returncode == 0, r.stderr
    torch.testing.assert_close(torch.load(tmp_path / "out.pt"), want)


def test_statistics_must_match_on_load(tmp_path):
    fe = Spectrogram3C(n_mels=32).fit_stats([_waves()])
    model = AudioEncoder(fe, build_encoder("cont_only", width=8, depths=(1, 1, 1, 1), out_dim=8))
    d = model.to_dict()
    d["state_dict"]["frontend.mean"] = torch.zeros(4)        # a damaged file: wrong shape of a statistic
    torch.save(d, tmp_path / "bad.pt")
    with pytest.raises(ModelFileError, match="frontend.mean"):
        AudioEncoder.load(tmp_path / "bad.pt")


@pytest.mark.parametrize("bad,msg", [(torch.zeros(2, 3, 100), r"shape \[B, T\]"),
                                     (torch.zeros(2, 100, dtype=torch.int16), "floating point"),
                                     (torch.tensor([[0.0, float("inf")] * 100]), "NaN or infinite")])
def test_bad_input(bad, msg):
    with pytest.raises(ValueError, match=msg):
        Spectrogram3C()(bad)
