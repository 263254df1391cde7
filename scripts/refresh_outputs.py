"""Refresh the committed outputs of the docs pages (`make docs-outputs [NB=nbs/02_augment.ipynb]`).

Each page runs headlessly in a Jupyter kernel from its own folder, with small sizes (`IN_TEST=1`, as `nbdev-test`
and `nbdev-docs` run it; `cuda` cells are left out, `slow` and `experiment` cells run; the experiment notebooks
get the small parameters of `docs_site.PARAMETERS`, their run folders in a scratch folder). Then only small
static outputs go back into the notebook:

- printed text, tables (Markdown, HTML) and PNG images as the cells made them;
- plotly figures as their JSON (`application/vnd.plotly.v1+json`; the site draws them with one local plotly.js),
  or as a PNG drawn by plotly.js in headless Chromium when the figure's data is over `--max-figure-kb`;
- audio players as small OGG/Vorbis files in `nbs/audio/<page>/` (named by a hash of the sound) that an
  `<audio>` element plays by relative path, never base64 in the notebook;
- widgets (which a static page cannot run) as a PNG picture of the widget as JupyterLab draws it in headless
  Chromium, and the `make lab` line that opens it live;
- nothing for hidden and exported cells (nbdev hides or re-runs those), no absolute paths (the project's and the
  scratch folder's are made relative), no tracebacks (a cell that fails stops that page and keeps its old outputs).

The notebook's metadata records a hash of its code cells (`docs_site.code_hash`); tests/test_docs_site.py fails
when a page's code changed since. The notebook is cleaned as `nbdev-clean` cleans it, so `make sync` changes
nothing afterwards. `--out DIR` writes the notebooks and audio into DIR instead of nbs/ (a dry run of every page).
"""
from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import docs_site as ds  # noqa: E402
from docs_site import NBS, PLOTLY, ROOT, WIDGET  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
SKIP_FLAGS = {"cuda"}                          # cells that need hardware the refresh does not assume
NO_OUTPUTS = {"hide", "export", "exports", "exporti"}
DIRECTIVE = re.compile(r"^\s*#\s*\|\s*([\w-]+)\s*:?\s*(.*?)\s*$")
AUDIO_SRC = re.compile(r'src="data:audio/[\w.+-]+;base64,([^"]+)"')
MAX_AUDIO_SECONDS = 15.0
KERNEL_CELL = re.compile(r"(?:/[\w.-]+)*/ipykernel_\d+/\d+\.py")
TEMP_DIR = re.compile(re.escape(tempfile.gettempdir()) + r"/tmp[\w-]{8}")
PAGE_BUDGET = 800_000                  # bytes of outputs per page; then the largest figures become pictures
SETUP = """import plotly.io as _pio, tqdm.auto as _ta, tqdm.std as _ts
_pio.renderers.default = "plotly_mimetype"      # figures as their JSON; the site brings plotly.js
class _quiet(_ts.tqdm):                         # no progress bars (a widget in a kernel) on a static page
    def __init__(self, *a, **k): k["disable"] = True; super().__init__(*a, **k)
_ta.tqdm = _quiet
del _pio, _ta, _ts, _quiet"""
WIDGET_NOTE = ds.WIDGET_NOTE


class PageError(Exception):
    "A page that could not be refreshed, with why."


def directives(src: str) -> dict[str, str]:
    out = {}
    for line in src.splitlines():
        if not line.strip(): continue
        m = DIRECTIVE.match(line)
        if not m: break
        out[m.group(1)] = m.group(2)
    return out


# ---- paths in outputs ------------------------------------------------------------------------------------
class Sanitiser:
    "Absolute paths of this machine in outputs become relative: the scratch folder's, then the project's."
    def __init__(self, *roots: Path):
        self.pairs = []
        for r in roots:
            for p in {str(r), str(Path(r).resolve())}:
                self.pairs += [(p + "/", ""), (p, ".")]
        self.pairs.sort(key=lambda t: -len(t[0]))

    def __call__(self, s):
        if isinstance(s, list): return [self(x) for x in s]
        if not isinstance(s, str): return s
        for a, b in self.pairs: s = s.replace(a, b)
        s = KERNEL_CELL.sub("<cell>", s)       # warnings name the kernel's file of the cell's code
        return TEMP_DIR.sub("<tmp>", s)        # folders a page makes with tempfile


# ---- headless Chromium: figures as PNG, widgets as JupyterLab draws them ---------------------------------
class Browser:
    "One headless Chromium (Playwright), started on first use."
    def __init__(self):
        self.pw = self.browser = self._fig_page = None

    def _start(self):
        if self.browser: return
        if not CHROMIUM.exists():
            raise PageError(f"{CHROMIUM} not found: figures as PNG and widget pictures need Debian's chromium "
                            "(`make env` as root installs it, or `apt-get install chromium`)")
        from playwright.sync_api import sync_playwright
        self.pw = sync_playwright().start()
        self.browser = self.pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)

    def figure_png(self, fig: dict) -> bytes:
        "The figure drawn by plotly.js at its layout's size (default 1000 x 450 px)."
        self._start()
        if self._fig_page is None:
            self._fig_page = self.browser.new_page()
            self._fig_page.set_content("<html><body style='margin:0'></body></html>")
            self._fig_page.add_script_tag(path=str(ds.plotly_js()))
        lay = fig.get("layout") or {}
        url = self._fig_page.evaluate(
            "async ([fig, w, h]) => await Plotly.toImage({data: fig.data, layout: fig.layout || {}},"
            " {format: 'png', width: w, height: h, scale: 1})", [fig, lay.get("width") or 1000, lay.get("height") or 450])
        return base64.b64decode(url.split(",", 1)[1])

    def close(self):
        if self.browser: self.browser.close()
        if self.pw: self.pw.stop()
        self.pw = self.browser = self._fig_page = None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def widget_pictures(browser: Browser, nb, want: dict[int, int], where: Path, timeout: float = 300) -> dict:
    """PNG pictures of the widgets `nb` displays, as JupyterLab draws them: `want` maps a cell index of `nb` to
    its number of widget outputs; returns {(cell, k): png} for the k-th widget output of each cell."""
    import nbformat
    browser._start()
    work = where / "lab"
    work.mkdir(parents=True, exist_ok=True)
    clean = copy.deepcopy(nb)
    for c in clean.cells:
        if c.cell_type == "code": c.outputs, c.execution_count = [], None
    nbformat.write(clean, work / "page.ipynb")
    port, token = _free_port(), os.urandom(16).hex()
    base = f"http://127.0.0.1:{port}"
    settings = where / "lab-settings"
    for rel, val in [("@jupyterlab/apputils-extension/notification.jupyterlab-settings",
                      {"fetchNews": "false", "checkForUpdates": False}),
                     ("@jupyterlab/notebook-extension/tracker.jupyterlab-settings", {"windowingMode": "none"})]:
        (settings / rel).parent.mkdir(parents=True, exist_ok=True)
        (settings / rel).write_text(json.dumps(val))
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(where / "lab-config"), "JUPYTER_RUNTIME_DIR": str(where / "lab-runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(settings), "JUPYTERLAB_WORKSPACES_DIR": str(where / "lab-ws")}
    log = where / "jupyterlab.log"
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--port-retries=0",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}", "--ServerApp.allow_root=True",
           "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    with open(log, "w") as logf:
        proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout
    left = lambda: max(1000, int((deadline - time.monotonic()) * 1000))
    try:
        while True:
            if proc.poll() is not None: raise PageError(f"JupyterLab exited: {log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2): break
            except OSError:
                if time.monotonic() > deadline: raise PageError("JupyterLab did not start")
                time.sleep(0.5)
        ctx = browser.browser.new_context(viewport={"width": 1150, "height": 3000})
        try:
            page = ctx.new_page()
            page.goto(f"{base}/lab/tree/page.ipynb?token={token}", timeout=left())
            page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                                   " && window.jupyterapp.shell.currentWidget.sessionContext", timeout=left())
            ok = page.evaluate("""async () => {
                const nb = window.jupyterapp.shell.currentWidget;
                await nb.context.ready; await nb.sessionContext.ready;
                return await window.jupyterapp.commands.execute('notebook:run-all-cells');
            }""")
            if ok is False: raise PageError("a cell failed when JupyterLab ran the page (see the kernel's output)")
            page.evaluate("() => window.jupyterapp.commands.execute('application:toggle-left-area')")
            # a cell's own outputs (a widget's inner outputs are nested deeper); widgets: those JupyterLab's
            # widget manager drew (`.jupyter-widgets`); marked so that each can be photographed by itself
            mark = """([i, n]) => { const c = document.querySelectorAll('.jp-Notebook .jp-Cell')[i];
                if (!c) return false; const area = c.querySelector('.jp-OutputArea.jp-Cell-outputArea');
                if (!area) return false;
                const w = [...area.children].map(ch => ch.querySelector(':scope > .jp-OutputArea-output'))
                    .filter(o => o && (o.classList.contains('jupyter-widgets') || o.querySelector('.jupyter-widgets')));
                if (w.length < n) return false;
                const drawn = w.every(o => o.getBoundingClientRect().height > 20
                    && [...o.querySelectorAll('.js-plotly-plot')].every(%s));
                if (drawn) w.forEach((o, k) => o.setAttribute('data-mtslvr-shot', i + '-' + k));
                return drawn; }""" % ds.PLOTLY_DRAWN
            from playwright.sync_api import TimeoutError as Timeout
            for i, n in want.items():
                try:
                    page.wait_for_function(mark, arg=[i, n], timeout=left())
                except Timeout:
                    page.screenshot(path=str(where / "lab.png"))
                    raise PageError(f"JupyterLab did not draw the {n} widget(s) of cell {i} in time "
                                    f"(a picture of the page: {where / 'lab.png'})") from None
            page.wait_for_timeout(1500)            # plotly's transitions and the players' layout settle
            shots = {}
            for i, n in want.items():
                for k in range(n):
                    el = page.locator(f'[data-mtslvr-shot="{i}-{k}"]')
                    shots[(i, k)] = _small_png(el.screenshot(timeout=left()))
            return shots
        finally:
            ctx.close()
    finally:
        try:
            req = urllib.request.Request(f"{base}/api/shutdown", method="POST", headers={"Authorization": f"token {token}"})
            urllib.request.urlopen(req, timeout=5).close()
        except OSError:
            pass
        try: proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL); proc.wait(timeout=5)


def _small_png(png: bytes, colours: int = 256) -> bytes:
    """The picture with at most `colours` colours: a third of the size for a widget's flat colours and text at 256, a
    fifth for a figure's heatmaps at 64 (no visible difference on a colour scale)."""
    try:
        from PIL import Image
    except ImportError:
        return png
    im = Image.open(io.BytesIO(png)).convert("RGB").quantize(colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=True)
    return buf.getvalue() if len(buf.getvalue()) < len(png) else png


# ---- running a page ---------------------------------------------------------------------------------------
def _param_cell(rel: str, scratch: Path) -> str:
    lines = [f"# parameters of the docs refresh (scripts/docs_site.py PARAMETERS)"]
    for k, v in ds.PARAMETERS[rel].items():
        if k in ds.PATH_PARAMETERS:
            v = [str(scratch / p) for p in v] if isinstance(v, list) else str(scratch / v)
        lines.append(f"{k} = {v!r}")
    return "\n".join(lines)


def prepare(rel: str, scratch: Path, src_nbs: Path = NBS):
    "The notebook to execute, and for each of its cells the index of the page's cell (None: added here)."
    import nbformat
    nb = nbformat.read(src_nbs / rel, as_version=4)
    cells, index = [nbformat.v4.new_code_cell(SETUP)], [None]
    for i, c in enumerate(nb.cells):
        c = copy.deepcopy(c)
        if c.cell_type == "code":
            d = directives(c.source)
            if SKIP_FLAGS & set(d) or d.get("eval", "").lower() == "false": c.source = ""
            c.outputs, c.execution_count = [], None
        cells.append(c); index.append(i)
        if rel in ds.PARAMETERS and "parameters" in c.get("metadata", {}).get("tags", []):
            cells.append(nbformat.v4.new_code_cell(_param_cell(rel, scratch))); index.append(None)
    if rel in ds.PARAMETERS and None not in index[1:]:
        raise PageError(f"nbs/{rel}: docs_site.PARAMETERS gives parameters but no cell is tagged 'parameters'")
    nb.cells = cells
    return nb, index


def execute(nb, rel: str, timeout: int, src_nbs: Path = NBS):
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=False, store_widget_state=False,
                            resources={"metadata": {"path": str((src_nbs / rel).parent)}})
    try:
        client.execute()
    except CellExecutionError as e:
        src = next((c.source for c in nb.cells if c.cell_type == "code" and c.get("outputs")
                    and any(o.output_type == "error" for o in c.outputs)), "")
        evalue = re.sub(r"\x1b\[[0-9;]*m", "", str(e.evalue))
        evalue = evalue if len(evalue) < 600 else evalue[:600] + " ..."
        raise PageError(f"nbs/{rel}: a cell failed with {e.ename}: {evalue}\n  the cell: "
                        + "\n    ".join(src.splitlines()[:6])) from None


def convert_outputs(rel: str, exec_nb, index, out_nbs: Path, browser: Browser, sanitise, max_fig: int, scratch: Path,
                    budget: int = PAGE_BUDGET):
    "The outputs to commit per page cell {cell index: [outputs]}, and the audio files written."
    import nbformat
    audio_dir = out_nbs / "audio" / Path(rel).with_suffix("")
    page_dir = (out_nbs / rel).parent
    result, audio, widgets = {}, [], {}
    for j, (c, i) in enumerate(zip(exec_nb.cells, index)):
        if i is None or c.cell_type != "code": continue
        d = directives(c.source)
        if NO_OUTPUTS & set(d) or "false" in (d.get("include", "").lower(), d.get("output", "").lower()):
            result[i] = []; continue                # outputs the page does not show
        outs = []
        for o in c.outputs:
            o = copy.deepcopy(o)
            if o.output_type == "error":       # (execution stops at an error; kept out all the same)
                raise PageError(f"nbs/{rel}: cell {i} failed: {o.get('ename')}: {o.get('evalue')}")
            if o.output_type == "stream":
                o.text = sanitise(o.text); outs.append(o); continue
            d = o.get("data", {})
            if WIDGET in d:
                widgets.setdefault(j, []).append((i, len(outs)))
                outs.append(nbformat.v4.new_output("display_data", data={"text/plain": "(widget picture)"}))
                outs.append(nbformat.v4.new_output("display_data", data={"text/markdown": WIDGET_NOTE}))
                continue
            if PLOTLY in d:
                fig = json.loads(sanitise(json.dumps(d[PLOTLY])))
                size = len(json.dumps(fig, separators=(",", ":")))
                o.data = {PLOTLY: fig}                  # (no text: the README keeps text outputs)
                if size > max_fig: _as_picture(o, browser)
                o.metadata = {}
                outs.append(o); continue
            html = "".join(d.get("text/html", ""))
            if AUDIO_SRC.search(html):
                files = [_write_audio(base64.b64decode(b64), audio_dir) for b64 in AUDIO_SRC.findall(html)]
                audio += files
                players = "\n".join(f'<audio controls preload="metadata" src="{os.path.relpath(f, page_dir)}"></audio>'
                                    for f in files)
                o.data = {"text/html": players, "text/plain": "<audio player>"}
                o.metadata = {}
                outs.append(o); continue
            for k in list(d):
                if k in ("application/javascript", "application/vnd.jupyter.widget-state+json"): del d[k]
                elif k.startswith("text/") or k == "application/json": d[k] = sanitise(d[k])
            if d: outs.append(o)
        result[i] = outs
    _fit_budget(rel, result, browser, budget)
    if widgets:
        shots = widget_pictures(browser, exec_nb, {j: len(v) for j, v in widgets.items()}, scratch / "widgets" / rel)
        for j, places in widgets.items():
            for k, (i, pos) in enumerate(places):
                result[i][pos] = nbformat.v4.new_output("display_data", data={
                    "image/png": base64.b64encode(shots[(j, k)]).decode(), "text/plain": ds.WIDGET_PICTURE})
    return result, audio


def _as_picture(o, browser: Browser, colours: int = 64):
    "A plotly figure output becomes a PNG of it (plotly.js draws it in Chromium); the drawing is kept in `o.png_`."
    fig = o.data[PLOTLY]
    size = len(json.dumps(fig, separators=(",", ":")))
    o.png_ = browser.figure_png(fig)
    o.data = {"image/png": base64.b64encode(_small_png(o.png_, colours)).decode(),
              "text/plain": f"<plotly figure as a picture: {size // 1000} kB of data>"}


def _fit_budget(rel: str, result: dict, browser: Browser, budget: int = PAGE_BUDGET):
    "The largest plotly figures become pictures until the page's outputs fit `budget` bytes; then fewer colours."
    size = lambda o: len(json.dumps({k: v for k, v in o.items() if k != "png_"}, separators=(",", ":")))
    outs = [o for os_ in result.values() for o in os_]
    total = sum(size(o) for o in outs)
    for o in sorted((o for o in outs if PLOTLY in o.get("data", {})), key=size, reverse=True):
        if total <= budget: break
        before = size(o); _as_picture(o, browser); total += size(o) - before
    if total > budget:                     # 32 colours: still no visible banding on the colour scales used here
        for o in outs:
            if getattr(o, "png_", None) is not None:
                before = size(o); o.data["image/png"] = base64.b64encode(_small_png(o.png_, 32)).decode()
                total += size(o) - before
    for o in outs: o.pop("png_", None)
    if total > budget:
        big = sorted(((size(o), i) for i, os_ in result.items() for o in os_), reverse=True)[:3]
        raise PageError(f"nbs/{rel}: its outputs take {total / 1e3:.0f} kB, more than the {budget / 1e3:.0f} kB a page may "
                        f"keep (largest: {', '.join(f'cell {i} {n / 1e3:.0f} kB' for n, i in big)}): show less")


def _write_audio(wav: bytes, folder: Path) -> Path:
    "A player's sound as OGG/Vorbis named by the sound's hash (the same sound keeps its file: Vorbis files differ per write)."
    import soundfile as sf
    y, sr = sf.read(io.BytesIO(wav), dtype="float32")
    if len(y) / sr > MAX_AUDIO_SECONDS:
        raise PageError(f"an audio player of {len(y) / sr:.1f} s: the docs keep players of at most "
                        f"{MAX_AUDIO_SECONDS:.0f} s (play a shorter excerpt)")
    name = hashlib.sha256(y.tobytes() + str(sr).encode()).hexdigest()[:16] + ".ogg"
    f = folder / name
    if not f.exists():
        folder.mkdir(parents=True, exist_ok=True)
        sf.write(str(f), y, sr, format="OGG", subtype="VORBIS")
    return f


def write_page(rel: str, outputs: dict, out_nbs: Path, src_nbs: Path = NBS) -> Path:
    "The page's notebook with the new outputs and its code hash, cleaned as nbdev-clean cleans it."
    from fastcore.nbio import write_nb
    from nbdev.clean import _nbdev_clean
    nb = json.loads((src_nbs / rel).read_text(encoding="utf-8"))
    for i, c in enumerate(nb["cells"]):
        if c["cell_type"] != "code": continue
        c["outputs"] = [json.loads(json.dumps(o)) for o in outputs.get(i, [])]
        c["execution_count"] = None
    nb["metadata"][ds.META_KEY] = {"code_sha256": ds.code_hash(nb, rel), "refresh": ds.REFRESH}
    _nbdev_clean(nb)
    dst = out_nbs / rel
    dst.parent.mkdir(parents=True, exist_ok=True)
    write_nb(nb, dst)
    return dst


def refresh(rel: str, out_nbs: Path, scratch: Path, browser: Browser, args, write: bool = True, src_nbs: Path = NBS) -> dict:
    "Run page `rel` of `src_nbs` and write it with its new outputs (and audio files) into `out_nbs`."
    t0 = time.monotonic()
    nb, index = prepare(rel, scratch, src_nbs)
    execute(nb, rel, args.timeout, src_nbs)
    t_run = time.monotonic() - t0
    if not write: return dict(page=rel, run_s=t_run)
    sanitise = Sanitiser(scratch, ROOT)
    outputs, audio = convert_outputs(rel, nb, index, out_nbs, browser, sanitise, args.max_figure_kb * 1000, scratch,
                                    args.page_budget_kb * 1000)
    dst = write_page(rel, outputs, out_nbs, src_nbs)
    # audio files of this page no output plays any more
    folder = out_nbs / "audio" / Path(rel).with_suffix("")
    if folder.exists():
        for f in folder.iterdir():
            if f not in audio: f.unlink()
        if not any(folder.iterdir()): folder.rmdir()
    sys.path.insert(0, str(ROOT / "scripts"))
    from check_notebooks import problems
    bad = problems(dst)
    if bad: raise PageError(f"nbs/{rel}: the refreshed notebook fails the hygiene check:\n  " + "\n  ".join(bad))
    return dict(page=rel, run_s=t_run, total_s=time.monotonic() - t0, kb=dst.stat().st_size / 1000,
                audio_kb=sum(f.stat().st_size for f in set(audio)) / 1000, n_audio=len(set(audio)))


def environment() -> dict:
    "What the pages run with: small sizes (IN_TEST, as nbdev-test), this checkout's library and data, one thread."
    return dict(IN_TEST="1", PYTHONPATH=str(ROOT), MTSLVR_DATA=str(ROOT / "data"), MPLBACKEND="Agg",
                PYDEVD_DISABLE_FILE_VALIDATION="1",
                **{k: os.environ.get(k, "1") for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "MTSLVR_TORCH_THREADS")})


def options(**kw) -> argparse.Namespace:
    "The command's options (its defaults, changed by `kw`), for calling `refresh` from Python."
    return argparse.Namespace(**{**vars(parser().parse_args([])), **kw})


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("notebooks", nargs="*", help="pages to refresh (default: every page of the site)")
    ap.add_argument("--out", type=Path, help="write notebooks and audio into this folder instead of nbs/ (a dry run)")
    ap.add_argument("--max-figure-kb", type=int, default=150, help="plotly figures with more data become a PNG")
    ap.add_argument("--page-budget-kb", type=int, default=PAGE_BUDGET // 1000,
                    help="outputs a page may keep; the largest figures become pictures to fit")
    ap.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    ap.add_argument("--check", action="store_true", help="only say which pages' outputs are missing or stale")
    return ap


def main(argv=None) -> int:
    ap = parser()
    args = ap.parse_args(argv)
    pages = ds.sidebar_pages()
    if args.notebooks:
        want = []
        for p in args.notebooks:
            rel = str(Path(p).resolve().relative_to(NBS.resolve())) if Path(p).exists() else p
            if rel not in pages: ap.error(f"{p}: not a page of the site (nbs/sidebar.yml lists {', '.join(pages)})")
            want.append(rel)
        pages = [p for p in pages if p in want]
    if args.check:
        states = [(p, *ds.output_state(p)) for p in pages]
        for p, s, why in states: print(f"{s:8} {p}" + (f"  ({why})" if why else ""))
        return 1 if any(s != "fresh" for _, s, _ in states) else 0
    os.chdir(ROOT)
    os.environ.update(environment())
    out_nbs = args.out.resolve() if args.out else NBS
    browser, rows, failed, done = Browser(), [], [], set()
    with tempfile.TemporaryDirectory(prefix="mtslvr-docs-") as tmp:
        scratch = Path(tmp)
        try:
            for rel in pages:
                need = ds.NEEDS.get(rel)
                try:
                    if need and need not in done:
                        print(f"{rel}: first running {need} (its run folder is this page's input)", flush=True)
                        refresh(need, out_nbs, scratch, browser, args, write=False); done.add(need)
                    print(f"{rel} ...", flush=True)
                    r = refresh(rel, out_nbs, scratch, browser, args); done.add(rel)
                    rows.append(r)
                    print(f"  {r['total_s']:.0f} s, {r['kb']:.0f} kB" + (f", {r['n_audio']} audio files {r['audio_kb']:.0f} kB"
                                                                         if r["n_audio"] else ""), flush=True)
                except PageError as e:
                    failed.append(rel); print(f"FAILED {e}", flush=True)
                except Exception:
                    failed.append(rel); print(f"FAILED nbs/{rel}:\n{traceback.format_exc()}", flush=True)
        finally:
            browser.close()
    total = sum(r["total_s"] for r in rows)
    print(f"\nrefreshed {len(rows)} page(s) in {total:.0f} s" + (f" into {args.out}" if args.out else ""))
    for r in sorted(rows, key=lambda r: -r["total_s"])[:8]:
        print(f"  {r['total_s']:6.0f} s  {r['kb']:6.0f} kB  {r['page']}")
    if failed:
        print(f"{len(failed)} page(s) failed (their notebooks are unchanged): {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
