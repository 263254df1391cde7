"""Notebook hygiene (CONVENTIONS.md): every notebook under nbs/ must be committable as it is.

Fails on: base64 audio, saved widget state, absolute paths of this machine, tracebacks in outputs,
execution counts, notebooks over the size limit, and (in notebooks with a docs page that nbdev executes:
an exported cell or a show_doc call) non-exported cells that mix imports with other code. Prints every
problem with its notebook.
"""
import ast, json, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_BYTES = 1_000_000
ABS_PATH = re.compile(r"(?<![\w.:/])/(?:root|home|Users|tmp|work|opt|private|var/folders)/[\w.-]+")
DIRECTIVE = re.compile(r"^\s*#\s*\|\s*([\w-]+)", re.M)
EXPORTED = {"export", "exports", "exporti", "exec_doc"}
IMPORT = (ast.Import, ast.ImportFrom)
AUDIO = re.compile(r"data:audio/|<audio[^>]*src=\"data:|\"audio/(?:wav|x-wav|mpeg|ogg|flac)\"")


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _statements(src: str):
    "Top-level statements of a cell (magics and shell lines commented out), or None if it does not parse."
    code = "\n".join("#" + l if l.lstrip().startswith(("%", "!")) else l for l in src.splitlines())
    try: return ast.parse(code).body
    except SyntaxError: return None


def _runs_in_docs(nb) -> bool:
    "nbdev-docs executes cells only in notebooks it adds API docs to: an exported cell or a show_doc call."
    return any(c.get("cell_type") == "code" and (set(DIRECTIVE.findall(_source(c))) & EXPORTED
                                                  or "show_doc(" in _source(c)) for c in nb.get("cells", []))


def _imports_and_code(cell) -> bool:
    """nbdev's "Found cells containing imports and other code": nbdev-docs executes every cell that
    imports something, so such a cell runs without the (unexecuted) demo cells before it."""
    if cell.get("cell_type") != "code": return False
    src = _source(cell)
    directives = dict(re.findall(r"^\s*#\s*\|\s*([\w-]+):?\s*(.*)$", src, re.M))
    if set(directives) & EXPORTED or directives.get("eval", "").strip().lower() == "false": return False
    body = _statements(src)
    return bool(body) and any(isinstance(t, IMPORT) for t in body) and any(isinstance(t, (ast.Expr, ast.Assign)) for t in body)


def problems(path: Path) -> list[str]:
    raw = path.read_text(encoding="utf-8")
    out = []
    if len(raw.encode()) > MAX_BYTES:
        out.append(f"{len(raw.encode()) / 1e6:.1f} MB (limit {MAX_BYTES / 1e6:.0f} MB): clear large outputs")
    nb = json.loads(raw)
    if "widgets" in nb.get("metadata", {}):
        out.append("saved widget state in metadata.widgets: run nbdev-clean")
    docs_run = _runs_in_docs(nb)
    for i, c in enumerate(nb.get("cells", [])):
        if docs_run and _imports_and_code(c):
            first = next(l for l in _source(c).splitlines() if l.strip() and not DIRECTIVE.match(l))
            out.append(f"cell {i} ({first.strip()[:60]!r}): imports and other code in one cell: nbdev-docs runs it "
                       "without the cells before it; move the imports into the notebook's import cell, or the other "
                       "code into a cell of its own")
        if c.get("execution_count") is not None:
            out.append(f"cell {i}: execution count saved: run nbdev-clean")
        for o in c.get("outputs", []):
            if o.get("output_type") == "error":
                out.append(f"cell {i}: an error output ({o.get('ename')}): fix the cell or clear its output")
            if o.get("execution_count") is not None:
                out.append(f"cell {i}: output execution count saved: run nbdev-clean")
            txt = json.dumps(o)
            if "application/vnd.jupyter.widget-view+json" in o.get("data", {}):
                out.append(f"cell {i}: saved widget view: clear the output")
            if AUDIO.search(txt):
                out.append(f"cell {i}: embedded audio in an output: clear it")
            if "Traceback (most recent call last)" in txt:
                out.append(f"cell {i}: a traceback in an output")
            m = ABS_PATH.search(txt)
            if m:
                out.append(f"cell {i}: absolute path {m.group(0)!r} in an output")
    return out


def main(paths=None) -> int:
    nbs = [Path(p) for p in paths] if paths else sorted(
        p for p in (ROOT / "nbs").rglob("*.ipynb")
        if not any(part.startswith((".", "_")) for part in p.relative_to(ROOT / "nbs").parts))
    bad = 0
    for p in nbs:
        for msg in problems(p):
            print(f"{p.relative_to(ROOT) if p.is_absolute() and p.is_relative_to(ROOT) else p}: {msg}")
            bad += 1
    print(f"notebook hygiene: {len(nbs)} notebooks, {bad} problems")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
