"""The project's own promises: README in sync with index.ipynb and showing the two commands,
notebook hygiene (and that the checker catches what it must), the docs sidebar listing every page."""
import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import check_notebooks  # noqa: E402
import render_readme  # noqa: E402


def test_readme_is_rendered_from_index():
    assert (ROOT / "README.md").read_text() == render_readme.readme_text(), \
        "README.md is stale: run `make readme` and commit it"


def test_readme_shows_exactly_the_two_commands_near_the_top():
    txt = (ROOT / "README.md").read_text()
    first_block = re.search(r"```sh\n(.*?)```", txt, re.S)
    assert first_block and txt.index(first_block.group(0)) < 1500, "the two commands belong near the top"
    cmds = [l.split("#")[0].strip() for l in first_block.group(1).splitlines() if l.strip()]
    assert cmds == ["make demo", "make test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^\s*(time\s+)?make test\s*$", ci, re.M), ".ci/run must run the README's test command"


def test_make_targets_exist():
    mk = (ROOT / "Makefile").read_text()
    for target in ("demo:", "test:", "env:"):
        assert re.search(rf"^{target}", mk, re.M), target


def _nb(tmp_path, name, cells, metadata=None):
    nb = {"cells": cells, "metadata": metadata or {}, "nbformat": 4, "nbformat_minor": 5}
    p = tmp_path / name
    p.write_text(json.dumps(nb))
    return p


def _code(outputs, count=None):
    return {"cell_type": "code", "execution_count": count, "metadata": {}, "outputs": outputs, "source": "x"}


def test_hygiene_checker_catches_each_problem(tmp_path):
    clean = _nb(tmp_path, "clean.ipynb", [_code([{"output_type": "stream", "name": "stdout", "text": "ok\n"}])])
    assert check_notebooks.problems(clean) == []
    cases = {
        "audio": [_code([{"output_type": "display_data", "metadata": {},
                          "data": {"text/html": '<audio controls src="data:audio/wav;base64,UklGR"></audio>'}}])],
        "error output": [_code([{"output_type": "error", "ename": "ValueError", "evalue": "", "traceback": []}])],
        "absolute path": [_code([{"output_type": "stream", "name": "stdout", "text": "saved /root/runs/x.pt\n"}])],
        "execution count": [_code([], count=3)],
        "widget view": [_code([{"output_type": "display_data", "metadata": {},
                                "data": {"application/vnd.jupyter.widget-view+json": {"model_id": "a"}}}])],
    }
    for what, cells in cases.items():
        probs = check_notebooks.problems(_nb(tmp_path, "bad.ipynb", cells))
        assert any(what in p for p in probs), (what, probs)
    widget_state = _nb(tmp_path, "w.ipynb", [], {"widgets": {"application/vnd.jupyter.widget-state+json": {}}})
    assert any("widget state" in p for p in check_notebooks.problems(widget_state))
    big = _nb(tmp_path, "big.ipynb", [_code([{"output_type": "stream", "name": "stdout", "text": "x" * 1_100_000}])])
    assert any("MB" in p for p in check_notebooks.problems(big))


def test_hygiene_checker_catches_imports_mixed_with_code(tmp_path):
    "nbdev-docs executes every cell that imports something; such a cell must not need the demo cells before it."
    def cell(src): return {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": src}
    export = cell("#| export\nimport json\nFACTOR = 2")               # exported: nbdev-docs runs it, and must
    mixed = cell("#| hide\nimport json\nsummary = json.loads(res)")   # uses `res` of an unexecuted cell
    probs = check_notebooks.problems(_nb(tmp_path, "mixed.ipynb", [export, cell("res = '{}'"), mixed]))
    assert len(probs) == 1 and probs[0].startswith("cell 2 ('import json')") and "imports and other code" in probs[0], probs
    expr = cell("from pathlib import Path\nPath(tmp).exists()")
    assert len(check_notebooks.problems(_nb(tmp_path, "expr.ipynb", [cell("show_doc(print)"), expr]))) == 1
    fine = [export, cell("import json\nfrom pathlib import Path"), cell("summary = json.loads(res)"),
            cell("#| eval: false\nimport json\nsummary = json.loads(res)"), cell("%time import json\n!ls")]
    assert check_notebooks.problems(_nb(tmp_path, "fine.ipynb", fine)) == []
    # a notebook without exports or show_doc (experiments, index): nbdev-docs executes none of its cells
    assert check_notebooks.problems(_nb(tmp_path, "experiment.ipynb", [cell("res = '{}'"), mixed])) == []


def test_repository_notebooks_are_clean():
    assert check_notebooks.main() == 0


def _public_notebooks():
    nbs = ROOT / "nbs"
    return sorted(str(p.relative_to(nbs)) for p in nbs.rglob("*.ipynb")
                  if not any(part.startswith((".", "_")) for part in p.relative_to(nbs).parts))


def _sidebar_entries(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for v in node.values():
            yield from _sidebar_entries(v)
    elif isinstance(node, list):
        for v in node:
            yield from _sidebar_entries(v)


def test_docs_sidebar_lists_every_notebook():
    sb = yaml.safe_load((ROOT / "nbs" / "sidebar.yml").read_text())
    listed = {e for e in _sidebar_entries(sb["website"]["sidebar"]["contents"]) if e.endswith(".ipynb")}
    assert set(_public_notebooks()) == listed, "nbs/sidebar.yml must list every notebook once"


def test_pyproject_nbdev_settings():
    import tomllib
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    nb = cfg["tool"]["nbdev"]
    assert nb["allowed_cell_metadata_keys"] == ["tags"], "a string form drops papermill's parameters tag"
    assert set(nb["tst_flags"].split()) >= {"slow", "cuda"}
    assert nb["readme_nb"] == "index.ipynb"
    assert "torch==2.13.0" in (ROOT / "constraints.txt").read_text()


def test_nbdev_clean_keeps_the_parameters_tag(tmp_path):
    nb = {"cells": [{"cell_type": "code", "execution_count": 4, "id": "abc",
                     "metadata": {"tags": ["parameters"], "scrolled": True}, "outputs": [], "source": "steps = 2"}],
          "metadata": {"kernelspec": {"name": "python3", "display_name": "python3", "language": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    p = tmp_path / "params.ipynb"
    p.write_text(json.dumps(nb))
    exe = Path(sys.executable).parent / "nbdev-clean"
    subprocess.run([str(exe), "--fname", str(p)], check=True, cwd=ROOT, capture_output=True)
    cell = json.loads(p.read_text())["cells"][0]
    assert cell["metadata"] == {"tags": ["parameters"]}
    assert cell["execution_count"] is None
