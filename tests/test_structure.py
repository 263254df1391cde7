"""The house's standing rules, checked on the library's source: modules stay small, evaluation and analysis
never reach the training code, each name list is defined once, and the README's module table is current."""
import ast
import json
import re
from pathlib import Path
from unittest.mock import patch

import pytest

ROOT = Path(__file__).resolve().parent.parent
LIB = ROOT / "mtslvr"
MODULES = {p.stem: p for p in sorted(LIB.glob("*.py")) if not p.stem.startswith("_")}
# evaluation and analysis: they read encoder files and must work without the training loop
EVALUATION = ("features", "fewshot", "results", "hear_modules", "evaluate", "invariance", "hear", "widgets", "inspector")
MAX_LINES = 600


def _imports(path: Path) -> set:
    "The mtslvr modules a file imports anywhere (top level or inside functions: lazy imports count)."
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level == 1: out.add(mod.split(".")[0] if mod else "")
            elif mod.startswith("mtslvr."): out.add(mod.split(".")[1])
            elif mod == "mtslvr": out.update(a.name for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name.split(".")[1] for a in node.names if a.name.startswith("mtslvr."))
    return {m for m in out if m in MODULES}


def test_every_module_is_under_the_size_limit():
    long = {m: n for m, p in MODULES.items() if (n := len(p.read_text().splitlines())) >= MAX_LINES}
    assert not long, f"modules of {MAX_LINES}+ lines (split the notebook into ideas): {long}"


def test_evaluation_and_analysis_never_reach_the_training_module():
    graph = {m: _imports(p) for m, p in MODULES.items()}
    for start in EVALUATION:
        seen, todo = set(), [start]
        while todo:
            m = todo.pop()
            for n in graph.get(m, ()):
                if n not in seen: seen.add(n); todo.append(n)
        assert "pretrain" not in seen and "demo" not in seen, f"mtslvr.{start} reaches the training code via {sorted(seen)}"


def test_modules_import_only_modules_above_them():
    order = ["npyclips", "audio", "seed", "config", "dsp", "augment", "pipeline", "frontend", "adapters", "models", "authors", "losses", "data", "tasks",
             "resume", "splits", "pretrain", "features", "fewshot", "results", "hear_modules", "evaluate", "invariance", "hear", "demo", "study", "study_report", "widgets", "inspector", "cli", "fidelity"]
    assert set(order) == set(MODULES), f"the house's order lists {sorted(set(order) ^ set(MODULES))} wrongly"
    for m in order:
        below = {n for n in _imports(MODULES[m]) if order.index(n) > order.index(m)}
        assert not below, f"mtslvr.{m} imports {sorted(below)}, which come after it"


@pytest.mark.parametrize("name, owner", [("VARIANTS", "models"), ("METHODS", "losses"), ("AUGMENTATIONS", "augment"),
                                         ("MODES", "pipeline"), ("MLAP_MODES", "losses"), ("LAYOUTS", "data"),
                                         ("SPLIT_PARTS", "data"), ("HEADS", "models")])
def test_each_name_list_is_defined_once(name, owner):
    defined = [m for m, p in MODULES.items() for node in ast.parse(p.read_text()).body
               if isinstance(node, (ast.Assign, ast.AnnAssign))
               and name in [t.id for t in (node.targets if isinstance(node, ast.Assign) else [node.target]) if isinstance(t, ast.Name)]]
    assert defined == [owner], f"{name} is defined in {defined}; it belongs to mtslvr.{owner} alone"


def test_no_module_spells_out_the_variant_names():
    from mtslvr.models import VARIANTS
    names = set(VARIANTS)
    for m, p in MODULES.items():
        if m == "models": continue
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
                lits = {e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}
                assert len(lits & names) < 3 or m == "demo" and lits <= set(VARIANTS), \
                    f"mtslvr.{m} lists variant names ({sorted(lits & names)}): read mtslvr.models.VARIANTS"
            if isinstance(node, ast.Compare) and any(isinstance(c, ast.Constant) and c.value in names for c in node.comparators):
                raise AssertionError(f"mtslvr.{m} line {node.lineno}: tests a variant by name; use its row in VARIANTS")


def test_registered_names_reach_every_config_without_other_edits():
    "A variant, a method and an augmentation registered in-process (and undone after) are accepted by the configs."
    from mtslvr.augment import AUGMENTATIONS, Augmentation, register_augmentation
    from mtslvr.losses import METHODS, SimCLR, register_method
    from mtslvr.models import VARIANTS, Variant, build_encoder, register_variant
    from mtslvr.pretrain import PretrainConfig, build_model, build_objective
    import torch
    with patch.dict(VARIANTS), patch.dict(METHODS), patch.dict(AUGMENTATIONS):
        register_variant(Variant("mt_bn_pred", ("predictive",), adapter="bn", split=False))
        register_method("simclr2")(SimCLR)

        @register_augmentation
        class Gain(Augmentation):
            name, limits = "gain", {"gain": (0.0, 2.0)}
            def _draw(self, n, g): return {"gain": 0.5 + torch.rand(n, generator=g, dtype=torch.float64)}
            def apply(self, x, gain): return x * gain[:, None].to(x.dtype)

        c = PretrainConfig(variant="mt_split", method="simclr2", augmentations=("fade", "gain"), width=4, out_dim=8)
        obj = build_objective(c, build_model(c))
        assert obj.n_augmentations == 2 and obj.method_name == "simclr2"
        assert PretrainConfig(variant="mt_bn_pred").variant == "mt_bn_pred"
        assert build_encoder("mt_bn_pred", width=4, depths=(1, 1, 1, 1), out_dim=8).heads == ("predictive",)
        assert len(PretrainConfig.profile("paper").augmentations) == 7   # the paper profile pins the seven
    assert "mt_bn_pred" not in VARIANTS and "simclr2" not in METHODS and "gain" not in AUGMENTATIONS


def test_readme_module_table_lists_every_library_notebook():
    rows = dict(re.findall(r"^\| `(\w+)` \| `mtslvr\.(\w+)` \|", (ROOT / "README.md").read_text(), re.M))
    want = {}
    for nb in sorted((ROOT / "nbs").glob("[0-9]*.ipynb")):
        cells = json.loads(nb.read_text())["cells"]
        exp = next(re.search(r"#\|\s*default_exp\s+(\w+)", "".join(c["source"])).group(1) for c in cells
                   if "default_exp" in "".join(c["source"]))
        want[nb.stem] = exp
    assert rows == want, "README's module table (nbs/index.ipynb) must list each notebook with its module"
