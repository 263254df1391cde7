"""The authors' models, front-end and files, against the outputs of the authors' own code (tests/fixtures/authors).

The fixtures were made by running their code (see nbs/06a_authors.ipynb): deterministic weights built from each
released key list, their models' outputs on a fixed spectrogram, and W (two 5 s clips) end to end through their
front-end. Each model here is built in mtslvr's "authors" layout and loaded through `load_authors_encoder`.
"""
import json
from pathlib import Path
from unittest.mock import patch

import numpy as np
import pytest
import torch

from mtslvr.authors import (AuthorsFileError, convert_authors_file, deterministic_state_dict, fixture_spectrogram,
                            fixture_waveform, load_authors_encoder)
from mtslvr.frontend import Spectrogram3C
from mtslvr.models import VARIANTS, AudioEncoder, Variant, build_encoder, register_variant

FIX = Path(__file__).parent / "fixtures" / "authors"
KEYS = json.loads((FIX / "keys.json").read_text())["keys"]
REF = np.load(FIX / "reference_outputs.npz")
TOL = 1e-4                                   # the fixture's: max abs, a correct float32 model is within ~1e-5

# their released model types -> a file name of theirs (the plain ResNet needs one to tell its variant)
NAMES = {"adapter_parallel": "AS_BAL_simsiam_trans_1_0_parallel_2_3__100_5e-05_21022023-145537.pt",
         "adapter_series": "AS_BAL_simclrv1_trans_1_0_series_2_3__100_5e-05_21022023-145537.pt",
         "adapter_bn": "AS_BAL_simsiam_trans_1_0_bn_2_3__100_5e-05_21022023-145537.pt",
         "split_head": "AS_BAL_simsiam_trans_1_0_split_2_3__100_5e-05_21022023-145537.pt",
         "plain_resnet18": "AS_BAL_simclrv1_2_3__100_5e-05_01012023-000000.pt"}
VARIANT = {"adapter_parallel": "mt_parallel", "adapter_series": "mt_series", "adapter_bn": "mt_bn",
           "split_head": "mt_split", "plain_resnet18": "cont_only"}


@pytest.fixture(scope="module")
def spec():
    return fixture_spectrogram()


def _max_diff(a, b):
    return float((a - torch.as_tensor(b)).abs().max())


def match_spec(model, name, x):
    "Assert the encoder's outputs on the fixed spectrogram equal the authors' (task 0, task 1, 'all'; plain: its one)."
    with torch.no_grad():
        out, emb = model.encoder(x), model.encoder.embed(x)
    if name == "plain_resnet18":
        assert _max_diff(emb, REF[f"spec/{name}/None"]) < TOL
        return
    r0, r1 = REF[f"spec/{name}/0"], REF[f"spec/{name}/1"]
    assert _max_diff(out["contrastive"], r0) < TOL, "task 0 (contrastive)"
    assert _max_diff(out["predictive"], r1) < TOL, "task 1 (predictive)"
    assert _max_diff(emb, np.concatenate([r0, r1], 1)) < TOL, "'all' = [task 0 | task 1]"


@pytest.mark.parametrize("name", list(NAMES))
def test_released_model_types_match_the_authors_outputs(name, spec, tmp_path):
    path = tmp_path / NAMES[name]
    torch.save(deterministic_state_dict(KEYS[name]), path)     # a file as released: the backbone's state_dict
    model = load_authors_encoder(path)
    assert model.variant == VARIANT[name] and model.layout == "authors"
    assert [(k, list(v.shape)) for k, v in model.encoder.state_dict().items()] == list(KEYS[name].items())
    match_spec(model, name, spec)


@pytest.mark.parametrize("variant", ["pred_only", "mt_simple"])
def test_the_plain_resnet_is_the_same_network_for_every_plain_variant(variant, spec):
    model = load_authors_encoder(deterministic_state_dict(KEYS["plain_resnet18"]), variant=variant)
    match_spec(model, "plain_resnet18", spec)


def test_swapping_the_tasks_adapter_weights_fails_the_match(spec):
    # the two tasks' adapters of layer2..4 exchanged (end BNs and final layers kept): the match must fail,
    # so the match tells the tasks apart and the task order (0 = contrastive) is right
    sd = deterministic_state_dict(KEYS["adapter_parallel"])
    swapped = {}
    for k, v in sd.items():
        k2 = k
        if k.startswith(("layer2", "layer3", "layer4")):
            k2 = k.replace(".parallel_conv.0.", ".parallel_conv.X.").replace(".parallel_conv.1.", ".parallel_conv.0.") \
                  .replace(".parallel_conv.X.", ".parallel_conv.1.")
            k2 = k2.replace(".bns.0.", ".bns.X.").replace(".bns.1.", ".bns.0.").replace(".bns.X.", ".bns.1.")
        swapped[k2] = v
    assert swapped.keys() == sd.keys() and any(not torch.equal(swapped[k], sd[k]) for k in sd)
    model = load_authors_encoder(swapped, name=NAMES["adapter_parallel"])
    with pytest.raises(AssertionError, match="task 0"):
        match_spec(model, "adapter_parallel", spec)
    with torch.no_grad():
        out = model.encoder(spec)
    print("swapped adapters: max |diff| task 0", _max_diff(out["contrastive"], REF["spec/adapter_parallel/0"]),
          "task 1", _max_diff(out["predictive"], REF["spec/adapter_parallel/1"]))
    assert _max_diff(out["contrastive"], REF["spec/adapter_parallel/0"]) > 100 * TOL


@pytest.mark.parametrize("adapter", ["bn", "series", "parallel"])
def test_extras_one_final_layer_for_both_tasks(adapter, spec):
    name = f"extra_adapter_{adapter}_numsplits1"
    with patch.dict(VARIANTS):
        register_variant(Variant(f"mt_{adapter}_fc1", adapter=adapter, split=False))
        model = load_authors_encoder(deterministic_state_dict(KEYS[name]))
        with torch.no_grad():
            out = model.encoder(spec)
    assert _max_diff(out["contrastive"], REF[f"spec/{name}/0"]) < TOL
    assert _max_diff(out["predictive"], REF[f"spec/{name}/1"]) < TOL


@pytest.mark.parametrize("name", ["extra_adapter_parallel_2d_1ch", "extra_split_head_2d_1ch", "extra_plain_resnet18_2d_1ch"])
def test_extras_one_channel_input_loads_strictly(name, spec):
    with pytest.raises(AuthorsFileError, match="1-channel encoder"):
        load_authors_encoder(deterministic_state_dict(KEYS[name]), variant="cont_only" if "plain" in name else None)
    fe = Spectrogram3C.authors()                    # any registered front-end; the encoder is what is checked here
    model = load_authors_encoder(deterministic_state_dict(KEYS[name]), variant="cont_only" if "plain" in name else None,
                                 frontend=fe)
    assert model.encoder.in_channels == 1
    with torch.no_grad():
        assert torch.isfinite(model.encoder.embed(spec[:, :1])).all()


def test_the_one_d_extra_is_refused():
    with pytest.raises(AuthorsFileError, match="1-d ResNet"):
        load_authors_encoder(deterministic_state_dict(KEYS["extra_plain_resnet18_1d_1ch"]), variant="cont_only")


@pytest.mark.parametrize("name,key", [("adapter_parallel", "parallel"), ("adapter_series", "series"),
                                      ("plain_resnet18", "plain")])
def test_W_end_to_end_through_the_authors_frontend(name, key, tmp_path):
    path = convert_authors_file(_saved(tmp_path, name), tmp_path / "ours.pt")   # and through an mtslvr file
    model = AudioEncoder.load(path)
    assert model.frontend.get_config() == Spectrogram3C.authors().get_config()
    with torch.no_grad():
        e = model.embed(fixture_waveform())
    assert _max_diff(e, REF[f"e2e_W/{key}"]) < TOL


def _saved(tmp_path, name):
    p = tmp_path / NAMES[name]
    torch.save(deterministic_state_dict(KEYS[name]), p)
    return p


def test_authors_layout_trains_through_the_objective():
    # one optimisation step of the multi-task objective on a tiny encoder in the authors' layout, on waveforms
    from mtslvr.losses import MultiTaskObjective
    torch.manual_seed(0)
    model = AudioEncoder(Spectrogram3C.authors(), build_encoder("mt_parallel", 8, (1, 1, 1, 1), 16, layout="authors"))
    obj = MultiTaskObjective(model, "simclr")
    g = torch.Generator().manual_seed(0)
    wav = 0.1 * torch.randn(4, 4000, generator=g)
    labels = (torch.rand(4, 7, generator=g) > 0.5).float()
    out = obj(wav, wav + 0.01 * torch.randn(4, 4000, generator=g), labels)
    out["loss"].backward()
    assert torch.isfinite(out["loss"])
    heads = model.encoder.head_parameters()
    grads = {n: p.grad for n, p in model.encoder.named_parameters()}
    assert all(grads[n] is not None and grads[n].abs().sum() > 0 for h in heads for n in heads[h])
    assert grads["layer1.0.conv1.parallel_conv.0.conv.weight"].abs().sum() > 0    # layer1's adapters are trained


# ---- the authors' layout and front-end in mtslvr's own runs ------------------------------------------------
@pytest.fixture(scope="module")
def tiny_pool(tmp_path_factory):
    from mtslvr.audio import save_audio
    d = tmp_path_factory.mktemp("pool")
    g = torch.Generator().manual_seed(0)
    for i in range(8):
        n = 8000 + 1000 * i
        t = torch.arange(n) / 16000
        save_audio(d / f"clip{i}.flac", (0.3 * torch.sin(2 * torch.pi * (150 + 60 * i) * t) + 0.05 * torch.randn(n, generator=g)).clamp(-1, 1))
    return d


def test_training_in_the_authors_layout_runs_end_to_end_and_resumes_exactly(tiny_pool, tmp_path):
    from mtslvr.evaluate import EvalConfig, run_evaluation
    from mtslvr.invariance import AnalysisConfig, run_analysis
    from mtslvr.models import AudioEncoder
    from mtslvr.pretrain import PretrainConfig, load_checkpoint, pretrain

    def cfg(out, **kw):
        return PretrainConfig(data=str(tiny_pool), out_dir=str(out), variant="mt_parallel", width=4, depths=(1, 1, 1, 1),
                              out_dim=16, batch_size=4, steps=4, clip_seconds=0.5, val_fraction=0.25, val_every=2,
                              val_batches=1, checkpoint_every=2, log_every=1, device="cpu", seed=1,
                              encoder_layout="authors", frontend="authors", **kw)

    class Crash(Exception):
        pass

    def crash_at_3(step, objective):
        if step == 3: raise Crash()
    ref = pretrain(cfg(tmp_path / "ref"), progress=False)
    with pytest.raises(Crash): pretrain(cfg(tmp_path / "run"), on_step=crash_at_3, progress=False)
    pretrain(cfg(tmp_path / "run", resume=True), progress=False)
    a, b = (load_checkpoint(p / "checkpoints" / "last.pt")["objective"] for p in (tmp_path / "ref", tmp_path / "run"))
    assert all(torch.equal(v, b[k]) for k, v in a.items())
    enc = AudioEncoder.load(ref["encoder"])
    assert enc.encoder.config["layout"] == "authors" and not enc.frontend.normalise
    assert any(k.startswith("end_bns.") for k in enc.encoder.state_dict())          # their key names
    ev = run_evaluation(EvalConfig(encoders=(str(ref["encoder"]),), sets=("keywords",), shots=(1,), n_tasks=20,
                                   out_dir=str(tmp_path / "eval"), device="cpu", pieces="authors"), progress=False, out=lambda *a: None)
    assert set(ev["tables"][1].models) == {"random init", "ref"}
    an = run_analysis(AnalysisConfig(encoders=(str(ref["encoder"]),), sets=("keywords",), n_clips=4, seconds=0.5, n_values=1,
                                     n_tasks=10, out_dir=str(tmp_path / "inv"), device="cpu"), out=lambda *a: None)
    assert an["tables"]["invariance"].rows == ["ref / contrastive", "ref / predictive"]


def test_the_commands_take_the_authors_files(tmp_path):
    import subprocess, sys
    from mtslvr.evaluate import EvalConfig, load_eval_models
    theirs = tmp_path / "resnet18_weights.pt"        # a plain ResNet whose name says nothing: --variant tells it
    torch.save(deterministic_state_dict(KEYS["plain_resnet18"]), theirs)
    models = load_eval_models(EvalConfig(encoders=(str(theirs),), variant="cont_only"))
    assert models[theirs.stem].variant == "cont_only" and models["random init"].encoder.config["layout"] == "authors"
    exe = Path(sys.executable).parent / "mtslvr"
    r = subprocess.run([str(exe), "convert", str(theirs), str(tmp_path / "ours.pt"), "--variant", "cont_only"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and (tmp_path / "ours.pt").is_file(), r.stderr
    r = subprocess.run([str(exe), "convert", str(theirs), str(tmp_path / "ours.pt")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "--force" in r.stderr and "Traceback" not in r.stderr
