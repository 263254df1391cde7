"""`make docs-outputs` end to end on a small page of its own (tests/test_docs_site.py checks the real pages): what it
keeps and how (an audio player as an OGG file played by path, a small figure as plotly JSON, a large one as a PNG,
no hidden or GPU cells' outputs, no absolute paths), that a second refresh changes nothing, that a code change
makes the outputs stale, and that the page, processed as nbdev-docs processes it, plays and draws them in
headless Chromium."""
import functools
import http.server
import json
import shutil
import sys
import threading
from pathlib import Path

import nbformat
import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import docs_site as ds  # noqa: E402
import refresh_outputs as ro  # noqa: E402
from check_notebooks import problems  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
CELLS = [
    ("markdown", "# A page\n\n> What the refresh keeps"),
    ("code", "import tempfile\nimport numpy as np\nimport plotly.graph_objects as go\nfrom IPython.display import Audio"),
    ("code", "#| hide\nprint('a hidden cell')"),
    ("code", "print('scratch folder:', tempfile.mkdtemp())"),
    ("code", "Audio(0.5 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000), rate=16000)"),
    ("code", "go.Figure(go.Scatter(y=[1, 3, 2]))"),
    ("code", "go.Figure(go.Heatmap(z=np.random.default_rng(0).normal(size=(200, 300))), layout=dict(height=300))"),
    ("code", "#| cuda\nraise RuntimeError('a GPU cell runs only with a GPU')"),
]


def _page(folder: Path) -> Path:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(s) if t == "markdown" else nbformat.v4.new_code_cell(s)
                                         for t, s in CELLS])
    nb.metadata["kernelspec"] = {"display_name": "python3", "language": "python", "name": "python3"}
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / "page.ipynb")
    return folder / "page.ipynb"


@pytest.fixture(scope="module")
def refreshed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("refresh")
    nbs = tmp / "nbs"
    path = _page(nbs)
    env = ro.environment()
    saved = {k: __import__("os").environ.get(k) for k in env}
    import os
    os.environ.update(env)
    browser = ro.Browser()
    try:
        ro.refresh("page.ipynb", nbs, tmp / "scratch", browser, ro.options(), src_nbs=nbs)
        first = path.read_text()
        audio = sorted((nbs / "audio").rglob("*.ogg"))
        stamps = [f.stat().st_mtime_ns for f in audio]
        ro.refresh("page.ipynb", nbs, tmp / "scratch2", browser, ro.options(), src_nbs=nbs)
    finally:
        browser.close()
        for k, v in saved.items():
            if v is None: os.environ.pop(k, None)
            else: os.environ[k] = v
    return dict(tmp=tmp, nbs=nbs, path=path, first=first, audio=audio, stamps=stamps)


def test_refresh_keeps_small_static_outputs(refreshed):
    nb = json.loads(refreshed["path"].read_text())
    outs = [c.get("outputs", []) for c in nb["cells"]]
    assert outs[2] == [] and outs[7] == [], "no outputs for a hidden cell, none for a GPU cell"
    text = "".join(outs[3][0]["text"])
    assert text.startswith("scratch folder: <tmp>") and "/tmp/" not in text, text
    # the player: an <audio> element playing an OGG file beside the notebook, by relative path
    (player,) = outs[4]
    html = "".join(player["data"]["text/html"])
    (src,) = ds.audio_refs(nb)
    assert html == f'<audio controls preload="metadata" src="{src}"></audio>' and src.startswith("audio/page/"), html
    assert [refreshed["nbs"] / src] == refreshed["audio"]
    y, sr = sf.read(refreshed["nbs"] / src)
    want = 0.5 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)
    assert sr == 16000 and len(y) == 16000 and np.corrcoef(y, want)[0, 1] > 0.99, "the sound, Vorbis-compressed"
    assert (refreshed["nbs"] / src).stat().st_size < 20_000
    # the small figure as plotly's JSON, the large one (plenty of numbers) as a picture
    assert ds.PLOTLY in outs[5][0]["data"] and outs[5][0]["data"][ds.PLOTLY]["data"][0]["type"] == "scatter"
    assert "image/png" in outs[6][0]["data"] and ds.PLOTLY not in outs[6][0]["data"]
    assert ds.committed_counts(nb) == dict(figures=2, widgets=0, audio=1)
    assert problems(refreshed["path"]) == [], "the notebook passes the hygiene check"
    assert refreshed["path"].stat().st_size < 200_000


def test_refresh_twice_changes_nothing_and_code_changes_make_it_stale(refreshed):
    assert refreshed["path"].read_text() == refreshed["first"], "a second refresh writes the same notebook"
    audio = sorted((refreshed["nbs"] / "audio").rglob("*.ogg"))
    assert audio == refreshed["audio"] and [f.stat().st_mtime_ns for f in audio] == refreshed["stamps"], \
        "the same sound keeps its file (Vorbis files differ from one write to the next)"
    nb = json.loads(refreshed["path"].read_text())
    assert ds.output_state("page.ipynb", nb) == ("fresh", "")
    nb["cells"][5]["source"] = "go.Figure(go.Scatter(y=[1, 3, 4]))"
    state, why = ds.output_state("page.ipynb", nb)
    assert state == "stale" and "make docs-outputs NB=nbs/page.ipynb" in why
    nb["cells"][0]["source"] = "# Another title"           # prose does not make outputs stale
    nb["cells"][5]["source"] = json.loads(refreshed["first"])["cells"][5]["source"]
    assert ds.output_state("page.ipynb", nb)[0] == "fresh"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a): pass


def test_refreshed_page_plays_and_draws_in_chromium(refreshed, monkeypatch):
    if not CHROMIUM.exists(): pytest.fail(f"{CHROMIUM} not found: `apt-get install chromium` (scripts/debian-packages.txt)")
    from nbdev.processors import FilterDefaults
    from nbdev.serve_drv import exec_nb
    from playwright.sync_api import sync_playwright
    import build_docs
    monkeypatch.chdir(ROOT)                                   # nbdev reads the project's config (doc_procs) from here
    site = refreshed["tmp"] / "site"
    site.mkdir()
    exec_nb(refreshed["path"], refreshed["tmp"] / "proc.ipynb", FilterDefaults)   # as nbdev-docs processes a page
    html, title = build_docs.render_page(refreshed["tmp"] / "proc.ipynb", "page.ipynb", "", "site.css")
    assert title == "A page" and "mtslvr-plotly" in html and ds.PLOTLY not in html
    (site / "page.html").write_text(html)
    shutil.copy(ds.plotly_js(), site / ds.PLOTLY_JS)
    shutil.copytree(refreshed["nbs"] / "audio", site / "audio")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as pw:
            b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--disable-gpu"])
            page = b.new_page()
            page.goto(f"http://127.0.0.1:{server.server_address[1]}/page.html")
            page.wait_for_function(f"() => [...document.querySelectorAll('.js-plotly-plot')].filter({ds.PLOTLY_DRAWN}).length == 1",
                                   timeout=20000)
            page.wait_for_function("() => { const a = document.querySelector('audio'); return a && a.duration > 0; }",
                                   timeout=10000)
            seen = page.evaluate("""() => ({duration: document.querySelector('audio').duration,
                images: [...document.querySelectorAll('.output_area img')].map(i => i.naturalWidth)})""")
            b.close()
    finally:
        server.shutdown()
    assert abs(seen["duration"] - 1.0) < 0.01 and seen["images"] == [1000], seen
