"""AudioEncoder files: a round trip in a fresh process, and the faults a user can meet."""
import pickle
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn

from mtslvr.models import AudioEncoder, ModelFileError, build_encoder, register_frontend


@register_frontend(name="tests.TinyFrontend")
class TinyFrontend(nn.Module):
    "[B, T] -> [B, 3, 8, frames]: fixed random projection of windows, normalised by stored statistics."
    def __init__(self, n_bins=8, win=64, seed=0):
        super().__init__()
        self.config = dict(n_bins=n_bins, win=win, seed=seed)
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("proj", torch.randn(3 * n_bins, win, generator=g))
        self.register_buffer("mean", torch.zeros(3, n_bins, 1))
        self.n_bins, self.win = n_bins, win

    def forward(self, wav):
        y = (wav.unfold(1, self.win, self.win // 2) @ self.proj.T).abs().add(1e-3).log()
        return y.transpose(1, 2).reshape(wav.shape[0], 3, self.n_bins, -1) - self.mean


def _model():
    torch.manual_seed(0)
    fe = TinyFrontend()
    fe.mean.normal_()
    return AudioEncoder(fe, build_encoder("mt_series", width=8, depths=(1, 1, 1, 1), out_dim=16),
                        config=dict(method="simsiam", lam=1.0)).eval()


@pytest.fixture
def saved(tmp_path):
    return _model().save(tmp_path / "enc.pt")


def test_round_trip_in_a_fresh_process(saved, root):
    wav = torch.randn(2, 4000, generator=torch.Generator().manual_seed(1))
    want = _model().embed(wav)
    torch.save(wav, saved.parent / "wav.pt")
    code = textwrap.dedent(f"""
        import sys, torch
        sys.path.insert(0, {str(root / 'tests')!r})
        from mtslvr.models import AudioEncoder, ModelFileError
        try:
            AudioEncoder.load({str(saved)!r})          # the front-end is not registered in this process yet
            raise SystemExit("loaded with an unregistered front-end")
        except ModelFileError as e:
            assert "tests.TinyFrontend" in str(e) and "not registered" in str(e), e
        import test_models                              # registers TinyFrontend
        m = AudioEncoder.load({str(saved)!r})
        torch.save(m.embed(torch.load({str(saved.parent / 'wav.pt')!r})), {str(saved.parent / 'out.pt')!r})
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root)
    assert r.returncode == 0, r.stderr
    torch.testing.assert_close(torch.load(saved.parent / "out.pt"), want)


@pytest.mark.parametrize("damage", ["empty", "truncated", "garbage", "text"])
def test_damaged_files_name_the_file(saved, damage):
    data = saved.read_bytes()
    saved.write_bytes({"empty": b"", "truncated": data[: len(data) // 2], "garbage": bytes(range(256)) * 10,
                       "text": b"model: resnet\n"}[damage])
    with pytest.raises(ModelFileError, match="enc.pt"):
        AudioEncoder.load(saved)


class _Boom:
    def __reduce__(self):
        return (print, ("code from the file ran",))


def test_a_pickle_that_runs_code_is_refused(tmp_path, capsys):
    p = tmp_path / "evil.pt"
    torch.save({"format_version": 1, "payload": _Boom()}, p)
    with pytest.raises(ModelFileError, match="evil.pt"):
        AudioEncoder.load(p)
    assert "code from the file ran" not in capsys.readouterr().out


def test_state_that_does_not_fit_is_a_clear_error(saved):
    d = torch.load(saved, weights_only=True)
    d["encoder"]["width"] = 16                          # weights of width 8 cannot fill a width-16 encoder
    del d["sha256"]                                     # (an edited file: as one written before checksums)
    torch.save(d, saved)
    with pytest.raises(ModelFileError, match="cannot rebuild"):
        AudioEncoder.load(saved)


def test_objective_trains_an_audio_encoder_on_waveforms():
    from mtslvr.losses import MultiTaskObjective
    model = _model().train()
    obj = MultiTaskObjective(model, "simclr")
    g = torch.Generator().manual_seed(0)
    wav = torch.randn(4, 2000, generator=g)
    labels = (torch.rand(4, 7, generator=g) > 0.5).float()
    out = obj(wav, wav + 0.1 * torch.randn(wav.shape, generator=g), labels)
    out["loss"].backward()
    assert set(out) >= {"loss", "cont", "mlap", "mlap_acc", "cont_acc", "finite"}
    assert model.encoder.stem[0].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match=r"\[B, T\]"):
        obj(wav[:, None], wav[:, None], labels)
