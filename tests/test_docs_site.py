"""The docs site a reader sees: each page's committed outputs are fresh (made from the code the page has now) and
show what the page should show (tests/docs_figures.yml), Quarto never executes a page, and (the browser test) the
site `make docs` builds draws every figure offline, decodes every picture, plays every audio file and shows no
traceback, in headless Chromium; a screenshot per page goes to tests/artifacts/docs/."""
import functools
import http.server
import json
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import docs_site as ds  # noqa: E402

# Pages whose outputs are not committed yet are skipped with "outputs missing: run make docs-outputs ...".
# Once every page's outputs are committed (the final `make docs-outputs`), set this to True: then a page without
# them fails.
REQUIRE_ALL_OUTPUTS = True

FIGURES = yaml.safe_load((Path(__file__).parent / "docs_figures.yml").read_text())
KINDS = ("figures", "widgets", "audio")
ARTIFACTS = ROOT / "tests" / "artifacts" / "docs"
CHROMIUM = Path("/usr/bin/chromium")
PAGES = ds.sidebar_pages()


def _nb(rel): return json.loads((ds.NBS / rel).read_text())


def _declared(rel): return {k: int((FIGURES.get(rel) or {}).get(k, 0)) for k in KINDS}


def test_quarto_never_executes_and_ships_plotly_js_and_audio():
    q = yaml.safe_load((ds.NBS / "_quarto.yml").read_text())
    assert q.get("execute", {}).get("enabled") is False, "nbs/_quarto.yml: `execute: enabled: false` (pages show committed outputs)"
    res = q["project"].get("resources", [])
    assert ds.PLOTLY_JS in res and "audio/**" in res, f"nbs/_quarto.yml: project.resources must copy plotly.js and audio/: {res}"


def test_deploy_workflow_gives_the_site_its_plotly_js():
    wf = yaml.safe_load((ROOT / ".github" / "workflows" / "deploy.yaml").read_text())
    steps = wf["jobs"]["deploy"]["steps"]
    runs = [s.get("run", "") for s in steps]
    js = next(i for i, r in enumerate(runs) if f"build_docs.py --plotly-js nbs/{ds.PLOTLY_JS}" in r)
    docs = next(i for i, r in enumerate(runs) if r.strip() == "nbdev-docs")
    assert js < docs, "plotly.min.js must be in nbs/ before nbdev-docs copies the pages into _proc"
    assert "github.workspace" in steps[docs].get("env", {}).get("PYTHONPATH", ""), "nbdev imports scripts.docs_site"
    import tomllib
    procs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["nbdev"]["doc_procs"]
    assert "scripts.docs_site:plotly_html" in procs
    assert ds.PLOTLY_JS in (ROOT / ".gitignore").read_text(), "plotly.js is written by the build, never committed"


def test_every_page_declares_what_it_shows():
    assert sorted(FIGURES) == sorted(PAGES), "tests/docs_figures.yml lists exactly the pages of nbs/sidebar.yml"
    for rel, kinds in FIGURES.items():
        assert set(kinds or {}) <= set(KINDS), (rel, kinds)
        assert all(isinstance(v, int) and v >= 0 for v in (kinds or {}).values()), (rel, kinds)


@pytest.mark.parametrize("rel", PAGES)
def test_committed_outputs_are_fresh_and_complete(rel):
    nb = _nb(rel)
    state, why = ds.output_state(rel, nb)
    if state == "missing" and not REQUIRE_ALL_OUTPUTS: pytest.skip(why)
    assert state == "fresh", why
    assert ds.committed_counts(nb) == _declared(rel), (
        f"nbs/{rel}: its committed outputs show {ds.committed_counts(nb)}, tests/docs_figures.yml declares "
        f"{_declared(rel)}: run `{ds.REFRESH} NB=nbs/{rel}` or correct the declaration")
    page_dir = (ds.NBS / rel).parent
    for src in ds.audio_refs(nb):
        f = (page_dir / src).resolve()
        assert f.is_file(), f"nbs/{rel}: its player plays {src}, which is missing: run `{ds.REFRESH} NB=nbs/{rel}`"
        assert f.is_relative_to(ds.AUDIO.resolve()), f"nbs/{rel}: audio outside nbs/audio/: {src}"


def test_audio_files_belong_to_their_pages():
    files = sorted(p for p in ds.AUDIO.rglob("*") if p.is_file()) if ds.AUDIO.exists() else []
    played = set()
    for rel in PAGES:
        page_dir = (ds.NBS / rel).parent
        played |= {(page_dir / s).resolve() for s in ds.audio_refs(_nb(rel))}
    orphans = [str(f.relative_to(ds.NBS)) for f in files if f.resolve() not in played]
    assert not orphans, f"audio files no page plays (run `{ds.REFRESH}` for their pages, or delete them): {orphans}"
    assert all(f.suffix == ".ogg" for f in files), files
    total = sum(f.stat().st_size for f in files)
    assert total < 1_500_000, f"nbs/audio/ holds {total / 1e6:.1f} MB: the players' files should be about 1 MB in all"


# ---- the browser test ---------------------------------------------------------------------------------------
class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a): pass


_MEASURE = """async () => {
  const drawn = %s;
  const t0 = Date.now();
  const divs = () => [...document.querySelectorAll('.mtslvr-plotly')];
  while (Date.now() - t0 < 20000 && !divs().every(d => d.classList.contains('js-plotly-plot') && drawn(d)))
    await new Promise(r => setTimeout(r, 100));
  const imgs = [...document.querySelectorAll('.output_area img, .jp-OutputArea img')];
  await Promise.all(imgs.map(i => i.decode().catch(() => null)));
  const audio = [...document.querySelectorAll('audio')];
  await Promise.all(audio.map(a => a.readyState >= 1 || a.error ? null : new Promise(r => {
    a.addEventListener('loadedmetadata', r, {once: true}); a.addEventListener('error', r, {once: true});
    setTimeout(r, 10000); a.load(); })));
  const text = document.body.innerText;
  return {
    plotly: divs().length, plotly_drawn: divs().filter(d => d.classList.contains('js-plotly-plot') && drawn(d)).length,
    images: imgs.length, images_decoded: imgs.filter(i => i.complete && i.naturalWidth > 0).length,
    widget_notes: (text.match(/A picture of the widget/g) || []).length,
    audio: audio.length, audio_playable: audio.filter(a => !a.error && a.duration > 0).length,
    traceback: /Traceback \\(most recent call last\\)/.test(text)
      || !!document.querySelector('[data-mime-type="application/vnd.jupyter.error"], .output_error'),
    title: (document.querySelector('header h1') || {}).innerText || '' };
}""" % ds.PLOTLY_DRAWN


def test_site_draws_every_page_offline_in_chromium(tmp_path):
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} not found: the browser test needs Debian's chromium (scripts/debian-packages.txt; "
                    "`make env` installs it when run as root, or run `apt-get install chromium`)")
    from playwright.sync_api import sync_playwright
    import build_docs
    site = tmp_path / "site"
    built = dict(build_docs.build(site))                   # what `make docs` builds, into a fresh folder
    assert sorted(built) == sorted(PAGES)
    assert (site / ds.PLOTLY_JS).stat().st_size > 1_000_000, "the site's one plotly.js"
    assert not list(site.rglob("*.ipynb")), "the site holds HTML pages, not notebooks"
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    problems, seen = [], {}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                         args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                                               "--disable-background-networking", "--disable-component-update"])
            ctx = browser.new_context(viewport={"width": 1300, "height": 900})
            external, bad = [], []
            # offline: nothing but this site's own files may load
            ctx.route("**/*", lambda route: route.continue_() if route.request.url.startswith(base)
                      else (external.append(route.request.url), route.abort()))
            page = ctx.new_page()
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("response", lambda r: bad.append(f"{r.status} {r.url}") if r.status >= 400 else None)
            page.on("requestfailed", lambda r: bad.append(f"failed {r.url}") if r.url.startswith(base) else None)
            for rel in PAGES:
                external.clear(); bad.clear(); errors.clear()
                t0 = time.monotonic()
                page.goto(base + ds.page_html(rel), wait_until="load")
                m = page.evaluate(_MEASURE)
                shot = ARTIFACTS / (ds.page_html(rel).replace("/", "__")[:-5] + ".png")
                page.screenshot(path=str(shot), full_page=True)
                seen[rel] = dict(m, seconds=round(time.monotonic() - t0, 1))
                say = lambda msg: problems.append(f"{rel} ({ds.page_html(rel)}): {msg}")
                if m["traceback"]: say("shows a Python traceback")
                if not m["title"]: say("has no title")
                if m["plotly_drawn"] != m["plotly"]: say(f"{m['plotly'] - m['plotly_drawn']} of {m['plotly']} plotly figures not drawn")
                if m["images_decoded"] != m["images"]: say(f"{m['images'] - m['images_decoded']} of {m['images']} pictures do not decode")
                if m["audio_playable"] != m["audio"]: say(f"{m['audio'] - m['audio_playable']} of {m['audio']} audio players cannot load their file")
                if external: say(f"loads from the network: {external[:3]}")
                if bad: say(f"missing files: {bad[:3]}")
                if errors: say(f"JavaScript errors: {errors[:3]}")
                shown = dict(figures=m["plotly"] + m["images"] - m["widget_notes"], widgets=m["widget_notes"], audio=m["audio"])
                state, why = ds.output_state(rel)
                want = _declared(rel) if state == "fresh" else ds.committed_counts(_nb(rel))
                if shown != want:
                    say(f"shows {shown}, but " + ("tests/docs_figures.yml declares " if state == "fresh" else
                                                  "its committed outputs hold ") + str(want))
            browser.close()
    finally:
        server.shutdown()
    print("\n" + "\n".join(f"{ds.page_html(r):28} {v}" for r, v in seen.items()))
    print(f"screenshots: {ARTIFACTS}")
    assert not problems, "\n".join(problems)
