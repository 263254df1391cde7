"""Write the README's demo result tables from a demo run folder's saved summary.

The tables (few-shot 1/5-shot, invariance, head weights) are the run folder's `.md` files as `mtslvr demo`
wrote them (`mtslvr.results.write_run`), the findings are `summary.json`'s `findings`. They go between the
markers `<!-- demo-tables:begin -->` and `<!-- demo-tables:end -->` of nbs/index.ipynb (then README.md is
rendered from it).

    python scripts/readme_tables.py runs/demo            # print the block
    python scripts/readme_tables.py runs/demo --write    # copy the summary to docs/results/demo/, update index + README
    python scripts/readme_tables.py --check              # exit 1 if README/index differ from docs/results/demo/

The README's study (nbs/studies/readme.yaml: seeds x variants) the same way, from `mtslvr study report DIR`'s
report/report.md, between `<!-- study-tables:begin -->` and `<!-- study-tables:end -->`:

    python scripts/readme_tables.py --study runs/study-readme --write   # copy report.md/json to docs/results/study/
    python scripts/readme_tables.py --study docs/results/study --check
"""
import argparse, json, shutil, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "docs" / "results" / "demo"
TABLES = ("fewshot_1shot", "fewshot_5shot", "invariance", "head_weights")
BEGIN, END = "<!-- demo-tables:begin -->", "<!-- demo-tables:end -->"
STUDY_COMMITTED = ROOT / "docs" / "results" / "study"
STUDY_BEGIN, STUDY_END = "<!-- study-tables:begin -->", "<!-- study-tables:end -->"
STUDY_KEEP = ("report.md", "report.json")
KEEP = tuple(f"{t}.{e}" for t in TABLES for e in ("md", "csv")) + ("summary.json",)


def tables_block(run_dir: Path) -> str:
    "The Markdown block of the README's result tables and findings, from `run_dir`'s `.md` tables and summary.json."
    run_dir = Path(run_dir)
    summary = run_dir / "summary.json"
    if not summary.is_file():
        raise FileNotFoundError(f"{summary}: no such file; pass a finished `mtslvr demo` run folder (e.g. runs/demo)")
    found = json.loads(summary.read_text()).get("findings")
    if found is None: raise ValueError(f"{summary}: has no 'findings' (not a demo run summary?)")
    parts = []
    for t in TABLES:
        p = run_dir / f"{t}.md"
        if not p.is_file():
            if t == "head_weights": continue   # written only when the demo has multi-head models
            raise FileNotFoundError(f"{p}: no such file; the run folder is incomplete (re-run `mtslvr demo`)")
        parts.append(p.read_text().strip())
    parts.append("The paper's findings, checked by the demo on these tables:\n\n" + "\n".join(f"- {l}" for l in found))
    return "\n\n".join(parts)


def replace_block(text: str, block: str, where: str, begin: str = BEGIN, end: str = END) -> str:
    "`text` with what lies between the markers replaced by `block`."
    if text.count(begin) != 1 or text.count(end) != 1:
        raise ValueError(f"{where}: expected one {begin} and one {end}")
    head, rest = text.split(begin); _, tail = rest.split(end)
    return f"{head}{begin}\n{block}\n{end}{tail}"


def current_block(text: str, where: str, begin: str = BEGIN, end: str = END) -> str:
    "What lies between the markers in `text`."
    if text.count(begin) != 1 or text.count(end) != 1:
        raise ValueError(f"{where}: expected one {begin} and one {end}")
    return text.split(begin)[1].split(end)[0].strip("\n")


def _index_cell(nb: dict, begin: str = BEGIN) -> dict:
    cells = [c for c in nb["cells"] if begin in "".join(c["source"])]
    if len(cells) != 1: raise ValueError(f"nbs/index.ipynb: expected one cell with {begin}, found {len(cells)}")
    return cells[0]


def study_block(study_dir: Path) -> str:
    "The README's study tables: `mtslvr study report`'s report.md (in study_dir/report/, or study_dir itself)."
    study_dir = Path(study_dir)
    rep = study_dir / "report" / "report.md"
    if not rep.is_file(): rep = study_dir / "report.md"
    if not rep.is_file():
        raise FileNotFoundError(f"{study_dir}: no report/report.md; run `mtslvr study report {study_dir}` first")
    return rep.read_text().strip()


def _write_index_block(block: str, begin: str, end: str) -> None:
    nb_path = ROOT / "nbs" / "index.ipynb"
    nb = json.loads(nb_path.read_text())
    cell = _index_cell(nb, begin)
    cell["source"] = replace_block("".join(cell["source"]), block, str(nb_path), begin, end).splitlines(keepends=True)
    nb_path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    subprocess.run([sys.executable, str(ROOT / "scripts" / "render_readme.py")], check=True)


def write_study(study_dir: Path) -> None:
    "Copy the study's report into docs/results/study/, put it into nbs/index.ipynb and render README.md."
    block = study_block(study_dir)
    src = Path(study_dir) / "report" if (Path(study_dir) / "report" / "report.md").is_file() else Path(study_dir)
    if src.resolve() != STUDY_COMMITTED.resolve():
        STUDY_COMMITTED.mkdir(parents=True, exist_ok=True)
        for f in STUDY_KEEP:
            if (src / f).is_file(): shutil.copy2(src / f, STUDY_COMMITTED / f)
    _write_index_block(block, STUDY_BEGIN, STUDY_END)


def check_study(study_dir: Path = STUDY_COMMITTED) -> list[str]:
    "The files whose study tables differ from `study_dir`'s report (empty: all agree)."
    block = study_block(study_dir)
    nb = json.loads((ROOT / "nbs" / "index.ipynb").read_text())
    stale = []
    if current_block("".join(_index_cell(nb, STUDY_BEGIN)["source"]), "nbs/index.ipynb", STUDY_BEGIN, STUDY_END) != block:
        stale.append("nbs/index.ipynb")
    if current_block((ROOT / "README.md").read_text(), "README.md", STUDY_BEGIN, STUDY_END) != block: stale.append("README.md")
    return stale


def write(run_dir: Path) -> None:
    "Copy the run's summary into docs/results/demo/, put its tables into nbs/index.ipynb and render README.md."
    run_dir = Path(run_dir)
    block = tables_block(run_dir)
    if run_dir.resolve() != COMMITTED.resolve():
        COMMITTED.mkdir(parents=True, exist_ok=True)
        for f in KEEP:
            if (run_dir / f).is_file(): shutil.copy2(run_dir / f, COMMITTED / f)
    nb_path = ROOT / "nbs" / "index.ipynb"
    nb = json.loads(nb_path.read_text())
    cell = _index_cell(nb)
    src = replace_block("".join(cell["source"]), block, str(nb_path))
    cell["source"] = src.splitlines(keepends=True)
    nb_path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    subprocess.run([sys.executable, str(ROOT / "scripts" / "render_readme.py")], check=True)


def check(run_dir: Path = COMMITTED) -> list[str]:
    "The files whose tables differ from `run_dir`'s (empty: all agree)."
    block = tables_block(run_dir)
    nb = json.loads((ROOT / "nbs" / "index.ipynb").read_text())
    stale = []
    if current_block("".join(_index_cell(nb)["source"]), "nbs/index.ipynb") != block: stale.append("nbs/index.ipynb")
    if current_block((ROOT / "README.md").read_text(), "README.md") != block: stale.append("README.md")
    return stale


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", nargs="?", type=Path, default=COMMITTED, help="a demo run folder (default: docs/results/demo)")
    ap.add_argument("--write", action="store_true", help="commit the summary to docs/results/demo/ and update index + README")
    ap.add_argument("--check", action="store_true", help="exit 1 if nbs/index.ipynb or README.md differ from the run's tables")
    ap.add_argument("--study", type=Path, default=None, help="a study folder (or docs/results/study): its report's tables instead")
    a = ap.parse_args(argv)
    try:
        if a.study is not None:
            if a.write: write_study(a.study); print(f"wrote {STUDY_COMMITTED.relative_to(ROOT)}/, nbs/index.ipynb, README.md"); return 0
            if a.check:
                stale = check_study(a.study)
                if stale: print(f"{', '.join(stale)}: study tables differ from {a.study}; run `python scripts/readme_tables.py --study DIR --write`")
                return 1 if stale else 0
            print(study_block(a.study)); return 0
        if a.write: write(a.run_dir); print(f"wrote {COMMITTED.relative_to(ROOT)}/, nbs/index.ipynb, README.md"); return 0
        if a.check:
            stale = check(a.run_dir)
            if stale: print(f"{', '.join(stale)}: tables differ from {a.run_dir}; run `python scripts/readme_tables.py RUN_DIR --write`")
            return 1 if stale else 0
        print(tables_block(a.run_dir)); return 0
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr); return 2


if __name__ == "__main__":
    sys.exit(main())
