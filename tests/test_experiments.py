"""The papermill experiment notebooks run headlessly on CPU with small parameters, reject unknown
parameters themselves, and keep their parameters cell equal to the config's defaults."""
import ast
import json
from pathlib import Path

import papermill as pm
import pytest

from mtslvr.evaluate import EvalConfig
from mtslvr.invariance import AnalysisConfig
from mtslvr.pretrain import PretrainConfig

ROOT = Path(__file__).resolve().parent.parent
EXP = ROOT / "nbs" / "experiments"


def parameters_cell(nb_path):
    nb = json.loads(nb_path.read_text())
    cells = [c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", [])]
    assert len(cells) == 1, f"{nb_path.name}: exactly one cell tagged 'parameters'"
    return "".join(cells[0]["source"])


def test_pretrain_parameters_are_the_config_defaults():
    tree = ast.parse(parameters_cell(EXP / "pretrain.ipynb"))
    params = {t.targets[0].id: ast.literal_eval(t.value) for t in tree.body}
    assert params == {r["name"]: r["default"] for r in PretrainConfig.fields()}


def test_pretrain_notebook_runs_headlessly(tmp_path):
    out = tmp_path / "out.ipynb"
    pm.execute_notebook(str(EXP / "pretrain.ipynb"), str(out), cwd=str(EXP), progress_bar=False,
                        parameters=dict(variant="mt_parallel", steps=6, width=4, depths=[1, 1, 1, 1], batch_size=4,
                                        val_every=3, val_batches=1, log_every=2, out_dim=16, clip_seconds=0.5,
                                        out_dir=str(tmp_path / "run"), device="cpu"))
    assert (tmp_path / "run" / "encoder.pt").exists()
    nb = json.loads(out.read_text())
    assert any("plotly" in json.dumps(c.get("outputs", [])) for c in nb["cells"]), "the loss-curve figure"


def test_unknown_parameter_is_an_error(tmp_path):
    with pytest.raises(pm.PapermillExecutionError, match="unknown config key 'setps'"):
        pm.execute_notebook(str(EXP / "pretrain.ipynb"), str(tmp_path / "o.ipynb"), cwd=str(EXP), progress_bar=False,
                            parameters=dict(setps=3, out_dir=str(tmp_path / "run")))


def test_analyse_parameters_are_the_config_defaults_and_its_own():
    nb = json.loads((EXP / "analyse.ipynb").read_text())
    params = {t.targets[0].id for t in ast.parse(parameters_cell(EXP / "analyse.ipynb")).body}
    own = next("".join(c["source"]) for c in nb["cells"] if "_extras = {" in "".join(c["source"]))
    extras = next(ast.literal_eval(t.value) for t in ast.parse(own).body
                  if isinstance(t, ast.Assign) and getattr(t.targets[0], "id", "") == "_extras")
    assert params == set(AnalysisConfig.field_names()) | extras


def test_analyse_notebook_runs_headlessly(tmp_path):
    out = tmp_path / "out.ipynb"
    pm.execute_notebook(str(EXP / "analyse.ipynb"), str(out), cwd=str(EXP), progress_bar=False,
                        parameters=dict(n_clips=4, seconds=0.5, n_values=1, n_tasks=10, out_dir=str(tmp_path / "run")))
    run = tmp_path / "run"
    assert {p.name for p in run.iterdir()} == {"grids.md", "summary.json", "plotly.min.js"} | {f"{t}.{e}" for t in ("invariance", "head_weights")
                                                              for e in ("md", "csv", "html")}
    assert "| random mt_split / predictive |" in (run / "invariance.md").read_text()
    nb = json.loads(out.read_text())
    assert sum("plotly" in json.dumps(c.get("outputs", [])) for c in nb["cells"]) >= 1, "the heatmaps"


def test_analyse_unknown_parameter_is_an_error(tmp_path):
    with pytest.raises(pm.PapermillExecutionError, match="unknown config key 'n_clip'"):
        pm.execute_notebook(str(EXP / "analyse.ipynb"), str(tmp_path / "o.ipynb"), cwd=str(EXP), progress_bar=False,
                            parameters=dict(n_clip=3, out_dir=str(tmp_path / "run")))
# ---- experiments/evaluate.ipynb ------------------------------------------------------------------


def tiny_encoder(path):
    "A tiny `mt_split` encoder (32-d features) saved to `path`."
    import torch
    from mtslvr.frontend import Spectrogram3C
    from mtslvr.models import AudioEncoder, build_encoder
    torch.manual_seed(0)
    return AudioEncoder(Spectrogram3C(), build_encoder("mt_split", width=4, depths=(1, 1, 1, 1), out_dim=32)).save(path)


def test_evaluate_parameters_are_the_config_defaults():
    tree = ast.parse(parameters_cell(EXP / "evaluate.ipynb"))
    params = {t.targets[0].id: ast.literal_eval(t.value) for t in tree.body}
    assert params.pop("profile") == ""   # the notebook's own parameter: a named profile
    assert params == {r["name"]: r["default"] for r in EvalConfig.fields()}


def test_evaluate_notebook_profile_paper(tmp_path):
    enc = tiny_encoder(tmp_path / "tiny" / "encoder.pt")
    pm.execute_notebook(str(EXP / "evaluate.ipynb"), str(tmp_path / "out.ipynb"), cwd=str(EXP), progress_bar=False,
                        parameters=dict(profile="paper", encoders=[str(enc)], sets=["keywords"], n_tasks=20,
                                        out_dir=str(tmp_path / "run"), device="cpu"))
    c = EvalConfig.load(tmp_path / "run" / "results.json")
    assert (c.n_tasks, c.shots, c.pieces, c.vote, c.sets) == (20, (1,), "authors", "authors", ("keywords",))
    assert not (tmp_path / "run" / "fewshot_5shot.md").exists()


def test_evaluate_notebook_runs_headlessly(tmp_path):
    enc = tiny_encoder(tmp_path / "tiny" / "encoder.pt")
    out = tmp_path / "out.ipynb"
    pm.execute_notebook(str(EXP / "evaluate.ipynb"), str(out), cwd=str(EXP), progress_bar=False,
                        parameters=dict(encoders=[str(enc)], sets=["keywords", "speakers"], n_tasks=30,
                                        out_dir=str(tmp_path / "run"), device="cpu"))
    run = tmp_path / "run"
    for name in ("fewshot_1shot.md", "fewshot_1shot.csv", "fewshot_5shot.md", "fewshot_5shot.csv", "fewshot.html",
                 "results.json", "accuracies.pt"):
        assert (run / name).is_file(), name
    table = (run / "fewshot_1shot.md").read_text()
    assert "| random init |" in table and "| tiny |" in table and "keywords" in table and "speakers" in table
    assert EvalConfig.load(run / "results.json").n_tasks == 30
    nb = json.loads(out.read_text())
    assert any("plotly" in json.dumps(c.get("outputs", [])) for c in nb["cells"]), "the figure"


def test_evaluate_unknown_parameter_is_an_error(tmp_path):
    with pytest.raises(pm.PapermillExecutionError, match="unknown config key 'n_task'"):
        pm.execute_notebook(str(EXP / "evaluate.ipynb"), str(tmp_path / "o.ipynb"), cwd=str(EXP), progress_bar=False,
                            parameters=dict(n_task=3, out_dir=str(tmp_path / "run")))
    assert not (tmp_path / "run").exists()
