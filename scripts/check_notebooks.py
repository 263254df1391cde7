"""Notebook hygiene (CONVENTIONS.md): every notebook under nbs/ must be committable as it is.

Fails on: base64 audio, saved widget state, absolute paths of this machine, tracebacks in outputs,
execution counts, and notebooks over the size limit. Prints every problem with its notebook.
"""
import json, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_BYTES = 1_000_000
ABS_PATH = re.compile(r"(?<![\w.:/])/(?:root|home|Users|tmp|work|opt|private|var/folders)/[\w.-]+")
AUDIO = re.compile(r"data:audio/|<audio[^>]*src=\"data:|\"audio/(?:wav|x-wav|mpeg|ogg|flac)\"")


def problems(path: Path) -> list[str]:
    raw = path.read_text(encoding="utf-8")
    out = []
    if len(raw.encode()) > MAX_BYTES:
        out.append(f"{len(raw.encode()) / 1e6:.1f} MB (limit {MAX_BYTES / 1e6:.0f} MB): clear large outputs")
    nb = json.loads(raw)
    if "widgets" in nb.get("metadata", {}):
        out.append("saved widget state in metadata.widgets: run nbdev-clean")
    for i, c in enumerate(nb.get("cells", [])):
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
            print(f"{p.relative_to(ROOT) if p.is_absolute() else p}: {msg}")
            bad += 1
    print(f"notebook hygiene: {len(nbs)} notebooks, {bad} problems")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
