"""Build the docs site without Quarto (`make docs`): every page with its committed outputs, processed as
`nbdev-docs` processes it (nbdev's `proc_nbs` into `_proc/`: front matter, API docs from `show_doc`, directives,
links, and `doc_procs` from pyproject.toml), then rendered to HTML by nbconvert into `_docs/` with the sidebar of
`nbs/sidebar.yml`, the audio files of `nbs/audio/` and ONE copy of plotly.js from the installed plotly package,
which every page's figures use: the site works offline, from disk or any static server.

The real site is Quarto's, built by `.github/workflows/deploy.yaml` from the same notebooks; there,
`python scripts/build_docs.py --plotly-js nbs/plotly.min.js` puts the one plotly.js where Quarto copies it from.
"""
from __future__ import annotations

import argparse
import html
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import docs_site as ds  # noqa: E402
from docs_site import NBS, ROOT  # noqa: E402

PROC = ROOT / "_proc"
CELL_KEYS = {"code": {"id", "cell_type", "metadata", "source", "outputs", "execution_count"},
             "markdown": {"id", "cell_type", "metadata", "source", "attachments"},
             "raw": {"id", "cell_type", "metadata", "source", "attachments"}}
DIRECTIVE = re.compile(r"^\s*#\s*\|\s*([\w-]+)\s*:?\s*(.*?)\s*$")
QUARTO_ATTRS = re.compile(r"(\]\([^)]*\))\{[^}\n]*\}")     # [text](url){target="_blank" ...}: Quarto's, not Markdown

CSS = """
body { margin: 0; font: 16px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #212529; }
nav.sidebar { position: fixed; top: 0; bottom: 0; left: 0; width: 250px; overflow-y: auto; padding: 1rem;
  background: #f7f7f9; border-right: 1px solid #dee2e6; box-sizing: border-box; font-size: 0.92rem; }
nav.sidebar .site { font-weight: 600; font-size: 1.2rem; display: block; margin-bottom: 0.8rem; }
nav.sidebar .section { margin: 0.9rem 0 0.2rem; font-weight: 600; color: #6c757d; }
nav.sidebar a { display: block; padding: 0.1rem 0.3rem; color: #2780e3; text-decoration: none; border-radius: 3px; }
nav.sidebar a.active { background: #2780e3; color: white; }
main { margin-left: 250px; padding: 1.5rem 2.5rem 4rem; max-width: 1100px; }
header h1 { margin-bottom: 0.2rem; } header .description { color: #6c757d; font-size: 1.1rem; margin-top: 0; }
pre, code { font-family: SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.88rem; }
.input_area pre { background: #f8f9fa; padding: 0.6rem 0.8rem; border-radius: 4px; overflow-x: auto; margin: 0; }
.output_area pre { padding: 0.3rem 0.8rem; overflow-x: auto; margin: 0.3rem 0; }
.output_stderr pre { background: #fff5f5; }
.prompt { display: none; }
.cell { margin: 0.6rem 0; }
table { border-collapse: collapse; margin: 0.6rem 0; font-size: 0.9rem; }
th, td { border-bottom: 1px solid #dee2e6; padding: 0.25rem 0.6rem; text-align: left; }
img { max-width: 100%; height: auto; }
audio { display: block; margin: 0.3rem 0; }
.anchor-link { display: none; }
"""


def _title(nb) -> tuple[str, str]:
    "Title and description from the front matter nbdev's FrontmatterProc writes as the first raw cell."
    import yaml
    c = nb.cells[0] if nb.cells else None
    if c is not None and c.cell_type == "raw" and c.source.lstrip().startswith("---"):
        fm = yaml.safe_load(c.source.strip().strip("-")) or {}
        return str(fm.get("title", "")), str(fm.get("description", ""))
    return "", ""


def _quarto_cells(nb):
    "What Quarto does with cell options: `include: false` drops a cell, `echo: false` its code, `output: false` its outputs."
    cells = []
    for c in nb.cells:
        if c.cell_type == "code":
            lines = c.source.splitlines()
            opts, k = {}, 0
            while k < len(lines) and (m := DIRECTIVE.match(lines[k])):
                opts[m.group(1)] = m.group(2).lower(); k += 1
            if opts.get("include") == "false": continue
            c.source = "\n".join(lines[k:]).strip("\n")
            tags = set(c.metadata.get("tags", []))
            if opts.get("echo") == "false" or not c.source: tags.add("remove_input")
            if opts.get("output") == "false": tags.add("remove_output")
            c.metadata["tags"] = sorted(tags)
            for o in c.get("outputs", []):
                md = o.get("data", {}).get("text/markdown")
                if md is not None: o["data"]["text/markdown"] = QUARTO_ATTRS.sub(r"\1", "".join(md))
        elif c.cell_type == "markdown":
            c.source = QUARTO_ATTRS.sub(r"\1", c.source)
        cells.append(c)
    nb.cells = cells
    return nb


def render_page(src: Path, rel: str, nav: str, css_href: str):
    "HTML of one processed notebook (`_proc/...`): (html, title)."
    import nbformat
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor
    from nbformat.v4.rwbase import rejoin_lines
    nb = json.loads(src.read_text())
    for c in nb["cells"]:
        for k in set(c) - CELL_KEYS[c["cell_type"]]: del c[k]
        c.get("metadata", {}).pop("execution", None)   # execnb's timings (floats; nbformat wants strings)
    nb.get("metadata", {}).pop("widgets", None)         # exec_show_docs's widget state: no widget on these pages
    nb = rejoin_lines(nbformat.from_dict(nb))
    title, desc = _title(nb)
    if title: nb.cells = nb.cells[1:]
    nb = _quarto_cells(nb)
    ex = HTMLExporter(template_name="basic", exclude_input_prompt=True, exclude_output_prompt=True)
    ex.register_preprocessor(TagRemovePreprocessor(remove_input_tags={"remove_input"}, remove_all_outputs_tags={"remove_output"},
                                                   enabled=True), enabled=True)
    body, _ = ex.from_notebook_node(nb)
    root = "../" * (len(Path(rel).parts) - 1)
    host = _doc_url()
    if host: body = body.replace(host + "/", root)        # links nbdev made to the hosted site: to this site's pages
    head = f"<h1>{html.escape(title)}</h1>" + (f'<p class="description">{html.escape(desc)}</p>' if desc else "")
    page = (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(title or rel)} - mtslvr</title>\n<link rel=\"stylesheet\" href=\"{css_href}\">\n</head>\n"
            f"<body>\n{nav}\n<main>\n<header>{head}</header>\n{body}\n</main>\n</body>\n</html>\n")
    return page, title


def _doc_url() -> str:
    from nbdev.config import get_config
    cfg = get_config()
    return (cfg.get("doc_host", "") + cfg.get("doc_baseurl", "")).rstrip("/")


def _nav(active: str, titles: dict) -> str:
    "The sidebar of nbs/sidebar.yml, links relative to the page `active`."
    import yaml
    root = "../" * (len(Path(active).parts) - 1)
    out = [f'<nav class="sidebar"><a class="site" href="{root}index.html">mtslvr</a>']
    def walk(items):
        for it in items:
            if isinstance(it, str):
                cls = ' class="active"' if it == active else ""
                out.append(f'<a{cls} href="{root}{ds.page_html(it)}">{html.escape(titles.get(it, it))}</a>')
            elif isinstance(it, dict) and "section" in it:
                out.append(f'<div class="section">{html.escape(it["section"])}</div>')
                walk(it.get("contents", []))
    walk(yaml.safe_load((NBS / "sidebar.yml").read_text())["website"]["sidebar"]["contents"])
    out.append("</nav>")
    return "\n".join(out)


def process(n_workers: int = 2, force: bool = False) -> Path:
    "nbdev-docs' first half: every page through nbdev's processors into _proc/ (cached by modification time)."
    from nbdev.serve import proc_nbs
    os.chdir(ROOT)
    # the processors import `scripts.docs_site` (doc_procs), in spawned workers too: those get this sys.path
    if str(ROOT) not in sys.path: sys.path.insert(0, str(ROOT))
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p])
    tools = max(Path(ds.__file__).stat().st_mtime, Path(__file__).stat().st_mtime)
    stale = PROC.exists() and PROC.stat().st_mtime < tools
    proc_nbs(str(NBS), n_workers=n_workers, force=force or stale)
    return PROC


def build(out: Path = ROOT / "_docs", n_workers: int = 2, force: bool = False) -> list[tuple[str, Path]]:
    "Build the site into `out`; returns [(page, html file)] in the sidebar's order."
    import nbformat
    t0 = time.monotonic()
    proc = process(n_workers, force)
    pages = ds.sidebar_pages()
    missing = [p for p in pages if not (proc / p).exists()]
    if missing: raise RuntimeError(f"nbdev's processing left out {missing}")
    titles = {}
    for p in pages:
        cells = json.loads((proc / p).read_text())["cells"]
        t, _ = _title(nbformat.from_dict({"cells": [dict(cells[0], source="".join(cells[0]["source"]))] if cells else []}))
        titles[p] = t or p
    if out.exists(): shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / "site.css").write_text(CSS + _pygments_css())
    shutil.copy(ds.plotly_js(), out / ds.PLOTLY_JS)
    if ds.AUDIO.exists(): shutil.copytree(ds.AUDIO, out / "audio")
    built = []
    for p in pages:
        root = "../" * (len(Path(p).parts) - 1)
        page, _ = render_page(proc / p, p, _nav(p, titles), root + "site.css")
        dst = out / ds.page_html(p)
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_text(page)
        built.append((p, dst))
    print(f"built {len(built)} pages into {out} in {time.monotonic() - t0:.0f} s")
    return built


def _pygments_css() -> str:
    from pygments.formatters import HtmlFormatter
    return HtmlFormatter(style="default").get_style_defs(".highlight")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "_docs", help="the site's folder (default _docs/)")
    ap.add_argument("--workers", type=int, default=2, help="nbdev processing workers")
    ap.add_argument("--force", action="store_true", help="process every page again (ignore _proc/'s cache)")
    ap.add_argument("--plotly-js", type=Path, metavar="FILE",
                    help="only write the installed plotly's plotly.min.js to FILE (for the Quarto build) and stop")
    a = ap.parse_args(argv)
    if a.plotly_js:
        a.plotly_js.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ds.plotly_js(), a.plotly_js)
        print(f"wrote {a.plotly_js}")
        return 0
    os.environ.setdefault("IN_TEST", "1")
    build(a.out.resolve(), a.workers, a.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
