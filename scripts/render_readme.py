"""Render README.md from nbs/index.ipynb (nbdev's `nbdev-readme` needs Quarto, which we cannot assume).

Cells marked `#| hide` are dropped, nbdev directive lines are stripped from code cells, and only
text outputs are kept. `--check` exits 1 when README.md differs from what would be written.
"""
import argparse, copy, sys
from pathlib import Path

import nbformat
from nbconvert import MarkdownExporter

ROOT = Path(__file__).resolve().parent.parent
HEADER = "<!-- Generated from nbs/index.ipynb by scripts/render_readme.py; edit the notebook, not this file. -->\n\n"


def _directives(src: str) -> set[str]:
    return {l[3:].strip().split()[0] for l in src.splitlines() if l.startswith("#| ") and l[3:].strip()}


def readme_text(nb_path: Path = ROOT / "nbs" / "index.ipynb") -> str:
    nb = nbformat.read(nb_path, as_version=4)
    out = copy.deepcopy(nb)
    cells = []
    for c in nb.cells:
        if c.cell_type == "code":
            if _directives(c.source) & {"hide", "export", "exporti"}:
                continue
            c = copy.deepcopy(c)
            c.source = "\n".join(l for l in c.source.splitlines() if not l.startswith("#|")).strip("\n")
            c.outputs = [o for o in c.get("outputs", [])
                         if o.get("output_type") == "stream"
                         or "text/plain" in o.get("data", {}) and not ({"image/png", "text/html"} & set(o.get("data", {})))]
            for o in c.outputs:
                if "data" in o:
                    o["data"] = {"text/plain": o["data"]["text/plain"]}
            if not c.source:
                continue
        elif c.cell_type == "markdown" and c.source.lstrip().startswith("#| hide"):
            continue
        cells.append(c)
    out.cells = cells
    body, _ = MarkdownExporter().from_notebook_node(out)
    return HEADER + body.strip() + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--check", action="store_true", help="fail if README.md is stale instead of writing it")
    a = ap.parse_args(argv)
    txt, readme = readme_text(), ROOT / "README.md"
    if a.check:
        if not readme.exists() or readme.read_text() != txt:
            print("README.md is stale: run `make readme` (or scripts/render_readme.py) and commit it.")
            return 1
        return 0
    if not readme.exists() or readme.read_text() != txt:
        readme.write_text(txt)
        print("wrote README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
