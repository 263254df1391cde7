"""Write the `parameters` cell of each papermill notebook in nbs/experiments/ from its config class, so the
notebook's parameters are the config's fields with the config's defaults and comments (one source of truth).
`make sync` runs it; `--check` only reports what it would change (exit 1)."""
import json
import sys
from importlib import import_module
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXP = ROOT / "nbs" / "experiments"

# notebook -> (config class, smoke-test overrides of its defaults, the notebook's own extra parameters)
NOTEBOOKS = {
    "pretrain.ipynb": ("mtslvr.pretrain.PretrainConfig", {}, ""),
    "evaluate.ipynb": ("mtslvr.evaluate.EvalConfig", {}, "profile = ''  # a named profile (EvalConfig.PROFILES, e.g. 'paper'): its fields, then every parameter set to another value than its default"),
    "analyse.ipynb": ("mtslvr.invariance.AnalysisConfig",
                      dict(sets=("keywords",), n_clips=8, seconds=1.0, n_values=2, n_tasks=20, out_dir="runs/analyse",
                           device="cpu"),
                      "random_variants = ['mt_split', 'cont_only']  # the smoke test's random-init encoders, used only when `encoders` is empty\n"
                      "width = 4  # ResNet base width of the random-init encoders\n"
                      "out_dim = 16  # output size of the random-init encoders"),
}


def parameters_source(path: str, overrides: dict, extra: str) -> str:
    mod, name = path.rsplit(".", 1)
    cls = getattr(import_module(mod), name)
    lines = []
    for r in cls.fields():
        v = overrides.get(r["name"], r["default"])
        lines.append(f"{r['name']} = {v!r}  # {r['doc']}")
    return "\n".join(lines + ([extra] if extra else []))


def main(check: bool = False) -> int:
    changed = []
    for nb_name, (cls, over, extra) in NOTEBOOKS.items():
        path = EXP / nb_name
        nb = json.loads(path.read_text())
        cells = [c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", [])]
        if len(cells) != 1: raise SystemExit(f"{path}: expected one cell tagged 'parameters', found {len(cells)}")
        want = parameters_source(cls, over, extra)
        if "".join(cells[0]["source"]) != want:
            changed.append(nb_name)
            if not check:
                cells[0]["source"] = want.splitlines(True)
                path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    if changed: print(("would change: " if check else "wrote the parameters of: ") + ", ".join(changed))
    return 1 if (check and changed) else 0


if __name__ == "__main__":
    sys.exit(main("--check" in sys.argv))
