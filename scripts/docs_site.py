"""What the docs tooling shares: the pages, the hash that says which code made a page's committed outputs,
and the nbdev processor that turns committed plotly figures into HTML for the site.

- `scripts/refresh_outputs.py` (`make docs-outputs`) runs the pages and commits small static outputs into them;
- `scripts/build_docs.py` (`make docs`) builds the site without Quarto;
- `pyproject.toml`'s `doc_procs` adds `plotly_html` to the processors of `nbdev-docs` (and of `make docs`): a page
  keeps a figure as plotly's own JSON (`application/vnd.plotly.v1+json`, what JupyterLab renders), and the site gets
  a `<div>` and a few lines of script that draw it with the one `plotly.min.js` at the site's root. Quarto and
  nbconvert render only HTML, never plotly's JSON type. (nbdev imports it as `scripts.docs_site`: the project root
  must be on `PYTHONPATH`, as the deploy workflow sets it.)
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT / "nbs"
AUDIO = NBS / "audio"                       # audio files of the pages' players: audio/<page without .ipynb>/<hash>.ogg
META_KEY = "mtslvr_docs"                    # notebook metadata kept by nbdev-clean (pyproject: allowed_metadata_keys)
REFRESH = "make docs-outputs"
PLOTLY = "application/vnd.plotly.v1+json"
WIDGET = "application/vnd.jupyter.widget-view+json"
PLOTLY_JS = "plotly.min.js"                 # at the site's root, once
WIDGET_PICTURE = "<widget: a picture>"      # text/plain of the PNG output that stands for a widget
WIDGET_NOTE = ("*A picture of the widget (made by `make docs-outputs`): a static page cannot run it. To use it, "
               "open this notebook in JupyterLab: `make lab`.*")
# (JavaScript) whether a `.js-plotly-plot` element is drawn: its SVG is there and holds a trace (or a heatmap's image)
PLOTLY_DRAWN = "(p => !!(p.querySelector('.main-svg') && p.querySelector('.trace, .heatmaplayer image, .hm, .imagelayer image')))"

# What a page needs to run headlessly with small sizes, beyond what its own cells set: papermill-style values
# for the experiment notebooks' `parameters` cell (paths relative to the refresh's scratch folder, which the
# refresh makes absolute), and the pages whose run a page needs first. Part of each page's hash: changing a page's
# parameters makes its committed outputs stale.
PARAMETERS = {
    "experiments/pretrain.ipynb": dict(variant="mt_parallel", steps=30, width=8, depths=[1, 1, 1, 1], batch_size=8,
                                       clip_seconds=1.0, out_dim=64, val_every=10, val_batches=1, log_every=5,
                                       checkpoint_every=30, out_dir="runs/pretrain", device="cpu"),
    "experiments/evaluate.ipynb": dict(encoders=["runs/pretrain/encoder.pt"], n_tasks=100, out_dir="runs/evaluate",
                                       device="cpu", cache=False),
    "experiments/analyse.ipynb": dict(encoders=["runs/pretrain/encoder.pt"], sets=["keywords", "instruments"],
                                      n_clips=8, n_values=2, n_tasks=20, out_dir="runs/analyse"),
}
PATH_PARAMETERS = {"encoders", "out_dir"}   # made absolute in the scratch folder
NEEDS = {"experiments/evaluate.ipynb": "experiments/pretrain.ipynb",
         "experiments/analyse.ipynb": "experiments/pretrain.ipynb"}


def plotly_js() -> Path:
    "The installed plotly package's plotly.min.js (the site's one copy)."
    import plotly
    p = Path(plotly.__file__).parent / "package_data" / PLOTLY_JS
    if not p.exists(): raise FileNotFoundError(f"{p}: the plotly package has no {PLOTLY_JS}")
    return p


def sidebar_pages() -> list[str]:
    "The site's pages (paths relative to nbs/), in the sidebar's order."
    import yaml
    def walk(node):
        if isinstance(node, str): yield node
        elif isinstance(node, dict): yield from (x for v in node.values() for x in walk(v))
        elif isinstance(node, list): yield from (x for v in node for x in walk(v))
    sb = yaml.safe_load((NBS / "sidebar.yml").read_text())["website"]["sidebar"]["contents"]
    return [p for p in walk(sb) if p.endswith(".ipynb")]


def page_html(rel: str) -> str:
    "The page's HTML path in the site, as nbdev and Quarto name it (`01_dsp.ipynb` -> `dsp.html`)."
    return str(Path(rel).with_name(re.sub(r"^\d+[a-zA-Z0-9]*_", "", Path(rel).name.lower())).with_suffix(".html"))


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def code_hash(nb: dict, rel: str) -> str:
    "SHA-256 of the page's code cells (and of its refresh parameters): what its outputs were made from."
    h = hashlib.sha256()
    for c in nb["cells"]:
        if c.get("cell_type") == "code":
            h.update(_source(c).rstrip().encode() + b"\n\x00")
    if rel in PARAMETERS: h.update(json.dumps(PARAMETERS[rel], sort_keys=True).encode())
    return h.hexdigest()


def output_state(rel: str, nb: dict | None = None) -> tuple[str, str]:
    "('fresh' | 'stale' | 'missing', why) for the committed outputs of page `rel`."
    nb = nb if nb is not None else json.loads((NBS / rel).read_text())
    meta = nb.get("metadata", {}).get(META_KEY)
    if not meta or "code_sha256" not in meta:
        return "missing", f"nbs/{rel}: outputs missing: run `{REFRESH} NB=nbs/{rel}` and commit the notebook"
    if meta["code_sha256"] != code_hash(nb, rel):
        return "stale", (f"nbs/{rel}: the committed outputs were made from other code than the page has now: "
                         f"run `{REFRESH} NB=nbs/{rel}` and commit the notebook (and nbs/audio/)")
    return "fresh", ""


def committed_counts(nb: dict) -> dict:
    "What the page's committed outputs show: figures (plotly or pictures), widget pictures and audio players."
    n = dict(figures=0, widgets=0, audio=len(audio_refs(nb)))
    for c in nb["cells"]:
        for o in c.get("outputs", []):
            d = o.get("data", {})
            if "".join(d.get("text/plain", "")) == WIDGET_PICTURE: n["widgets"] += 1
            elif PLOTLY in d or "image/png" in d or "image/jpeg" in d or "image/svg+xml" in d: n["figures"] += 1
    return n


def audio_refs(nb: dict) -> list[str]:
    "The audio files a page's outputs play (src paths relative to the page)."
    return [m for c in nb["cells"] for o in c.get("outputs", [])
            for m in re.findall(r'<audio[^>]*\ssrc="([^"]+)"', "".join(o.get("data", {}).get("text/html", "")))]


# ---- the site's figures ------------------------------------------------------------------------------------
_LOADER = """(function () {
  var w = window, id = "%(id)s";
  if (!w.mtslvrPlotly) w.mtslvrPlotly = new Promise(function (ok, fail) {
    if (w.Plotly) return ok(w.Plotly);
    var s = document.createElement("script");
    s.src = "%(js)s"; s.charset = "utf-8";
    s.onload = function () { ok(w.Plotly); };
    s.onerror = function () { fail(new Error("cannot load " + s.src)); };
    document.head.appendChild(s);
  });
  w.mtslvrPlotly.then(function (Plotly) {
    var f = JSON.parse(document.getElementById(id + "-data").textContent);
    Plotly.newPlot(id, f.data, f.layout || {}, Object.assign({responsive: true, displaylogo: false}, f.config || {}));
  });
})();"""


def figure_html(fig: dict, fid: str, root: str = "") -> str:
    """A plotly figure (its JSON: data, layout) as HTML that draws it with `root + plotly.min.js` (loaded once
    per page). The figure's JSON sits in a `<script type="application/json">`, escaped so it cannot end the tag."""
    height = (fig.get("layout") or {}).get("height") or 450
    data = json.dumps(fig, separators=(",", ":")).replace("</", "<\\/").replace("<!--", "<\\!--")
    return (f'<div id="{fid}" class="mtslvr-plotly" style="width:100%;height:{int(height)}px"></div>\n'
            f'<script type="application/json" id="{fid}-data">{data}</script>\n'
            f"<script>{_LOADER % dict(id=fid, js=root + PLOTLY_JS)}</script>\n")


def _site_root(nb) -> str:
    "The relative path from the page to the site's root ('' or '../')."
    p = nb.get("path_") if hasattr(nb, "get") else None
    if not p: return ""
    try: rel = Path(p).resolve().relative_to(NBS.resolve())
    except ValueError: return ""
    return "../" * (len(rel.parts) - 1)


try:
    from nbdev.process import Processor
except ImportError:          # the scripts run without nbdev too (they only need it for the processor)
    Processor = object


class plotly_html(Processor):
    "nbdev processor: each committed plotly figure (`application/vnd.plotly.v1+json`) becomes HTML that draws it."
    def begin(self): self.root, self.n = _site_root(self.nb), 0

    def cell(self, cell):
        for o in cell.get("outputs", []) or []:
            d = o.get("data", {})
            if PLOTLY in d and "text/html" not in d:
                fig = d.pop(PLOTLY)
                if isinstance(fig, str): fig = json.loads(fig)
                self.n += 1
                d["text/html"] = figure_html(fig, f"mtslvr-fig-{self.n}", self.root)
