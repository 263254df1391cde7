"""The augmentation explorer and the invariance inspector: driven through their handlers headlessly, their
explore notebooks executed in a kernel, and (the browser test) the explorer rendered by JupyterLab in
headless Chromium and clicked."""
import base64
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import soundfile as sf
import torch

from mtslvr.audio import z_normalise
from mtslvr.augment import AUGMENTATIONS
from mtslvr.frontend import Spectrogram3C
from mtslvr.data import bundled_sets, load_bundled
from mtslvr.inspector import ALL_SETS, InvarianceInspector
from mtslvr.invariance import GRIDS, head_weight_table, invariance_table, pick_clips
from mtslvr.models import AudioEncoder, build_encoder
from mtslvr.widgets import AugmentationExplorer, envelope

ROOT = Path(__file__).resolve().parent.parent
EXPLORE = ROOT / "nbs" / "explore" / "augmentations.ipynb"
EXPLORE_INVARIANCE = ROOT / "nbs" / "explore" / "invariance.ipynb"
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")


def _player_audio(out_widget):
    "Samples and rate of the WAV inside a player (an ipywidgets Output holding IPython.display.Audio)."
    (o,) = out_widget.outputs
    b64 = re.search(r'src="data:audio/wav;base64,([^"]+)"', o["data"]["text/html"]).group(1)
    return sf.read(io.BytesIO(base64.b64decode(b64)))


def test_handlers_change_state_figures_and_players():
    tone = torch.sin(2 * torch.pi * 220 * torch.arange(24000) / 16000)
    ex = AugmentationExplorer({"tone": tone, "noise": 0.1 * torch.randn(8000, generator=torch.Generator().manual_seed(0))},
                              order=["fade", "white_noise"], seed=5)
    s0 = ex.state
    assert s0["order"] == ["fade", "white_noise"] and s0["labels"] == [0, 1, 1, 0, 0, 0, 0]
    assert s0["samples"] == 24000 and s0["seed"] == 5
    for k in ("original", "view 1", "view 2"):
        y, sr = _player_audio(ex.players[k])
        assert sr == 16000 and len(y) == 24000 and abs(y).max() <= 1.0
    wave_y, spec_z = list(ex.figure.data[1].y), ex.figure.data[4].z
    ex.on_new_views()                                      # what the "new views" button calls
    s1 = ex.state
    assert s1["seed"] == 6 and s1["order"] == s0["order"] and s1["labels"] == s0["labels"]
    assert s1["params"] != s0["params"]
    assert list(ex.figure.data[1].y) != wave_y and ex.figure.data[4].z != spec_z
    assert torch.equal(ex.pipeline.apply(ex.clip[None])[1][0], ex.views[1])
    ex.clip_select.value = "noise"                         # what choosing in the dropdown does
    assert ex.state["samples"] == 8000 and len(_player_audio(ex.players["view 1"])[0]) == 8000
    assert list(ex.figure.data[0].y) == envelope(ex.clip[None])[1][0].tolist()
    ex.order_input.value = ["time_shift"]
    assert ex.state["labels"] == [int(n == "time_shift") for n in AUGMENTATIONS]
    ex.sliders[(0, "time_shift", "shift")].value = -0.5    # view 1 rolls by half the clip
    assert ex.state["params"][0]["time_shift"]["shift"] == -0.5
    assert torch.equal(ex.views[0], torch.roll(ex.clip, -4000))
    ex.on_sample_structure()
    assert 1 <= len(ex.order) <= 7 and ex.state["labels"] == [int(n in ex.order) for n in AUGMENTATIONS]


def test_explore_notebook_executes(monkeypatch):
    import nbformat
    from nbclient import NotebookClient
    nb = nbformat.read(EXPLORE, as_version=4)
    pp = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", f"{ROOT}{os.pathsep}{pp}" if pp else str(ROOT))   # the kernel imports this checkout
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(EXPLORE.parent)}}).execute()
    outs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outs if o.output_type == "error"]
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outs), "the explorer is displayed"
    state = next(o["data"]["text/plain"] for o in outs if "'labels'" in o.get("data", {}).get("text/plain", ""))
    assert "'seed': 0" in state and "instruments/" in state


def _tiny_encoder(variant, clips, seed):
    "An untrained encoder of the test sizes, its front-end statistics fitted on `clips`."
    torch.manual_seed(seed)
    fe = Spectrogram3C().fit_stats([z_normalise(clips)])
    return AudioEncoder(fe, build_encoder(variant, width=4, depths=(1, 1, 1, 1), out_dim=16)).eval()


def _rows(z): return [list(r) for r in z]   # a heatmap's z (plotly keeps rows as tuples or lists) as lists


def test_inspector_handlers_change_state_and_figures(tmp_path):
    sets = ("keywords", "instruments")
    clips = {s: pick_clips(load_bundled(s), 8, 1.0, key=s) for s in sets}
    split = _tiny_encoder("mt_split", clips["keywords"], 0)
    path = split.save(tmp_path / "models" / "mt_split-simclr" / "encoder.pt")        # a file, as a run leaves it
    ins = InvarianceInspector({"split": path, "simple": _tiny_encoder("mt_simple", clips["keywords"], 1)},
                              list(sets), n_values=2, n_clips=8, n_tasks=10)
    s = ins.state
    assert s["rows"] == ["split / contrastive", "split / predictive", "simple / shared"]
    assert s["set"] == ALL_SETS and s["clips"] == {"keywords": 8, "instruments": 8} and s["augmentation"] == "pitch_shift"
    # the heatmap is Table 5 of the same encoders on the same clips: all sets, then one set
    want = invariance_table(ins.models, clips, n_values=2)
    assert _rows(ins.heatmap.data[0].z) == want.values.tolist() and list(ins.heatmap.data[0].y) == want.rows
    n = len(s["rows"])
    bars = ins.figure.data[n:]
    assert [b.name for b in bars] == s["rows"] and len(bars[0].x) == 16
    assert bars[0].marker.color != bars[1].marker.color                 # contrastive next to predictive, told apart
    ins.on_cell(ins.heatmap.data[0], type("Points", (), {"xs": ["TS2"], "ys": [s["rows"][0]]})())   # a click on a column
    assert ins.state["augmentation"] == "time_stretch" and ins.value_slider.description == "rate"
    assert list(ins.figure.data[0].x) == GRIDS["time_stretch"].values(2).tolist() == [0.5, 1.5]
    ins.value_slider.value = 1
    assert ins.state["value"] == 1.5 and ins.figure.layout.shapes[0].x0 == 1.5
    at = torch.cat([ins.distances[k]["split"]["time_stretch"]["predictive"][1] for k in sets])
    assert list(bars[1].y) == at.tolist()
    assert torch.allclose(torch.tensor(ins.state["clip_distances"]["split / predictive"], dtype=torch.float64), at, atol=1e-6)
    assert list(ins.figure.data[2].y) == torch.stack([ins.distances[k]["simple"]["time_stretch"]["shared"].mean(1) for k in sets]).mean(0).tolist()
    ins.set_select.value = "instruments"
    assert _rows(ins.heatmap.data[0].z) == invariance_table(ins.models, clips["instruments"], n_values=2).values.tolist()
    assert len(bars[0].x) == 8 and ins.state["clip"] == ["instruments", 0] and "instruments" in ins.heatmap.layout.title.text
    before = ins.player.outputs
    ins.clip_select.value = ("instruments", 5)
    assert ins.player.outputs != before
    y, sr = _player_audio_at(ins.player, 3)
    assert sr == 16000 and len(y) == 16000
    clean, stretched = ins.augmented("instruments", 5)
    assert torch.equal(clean, z_normalise(clips["instruments"][5])) and not torch.allclose(clean, stretched)
    # head weights: the multi-task encoder only, per set
    hw = head_weight_table({"split": split}, {s: (load_bundled(s), bundled_sets()[s].piece_seconds) for s in sets}, n_tasks=10)
    assert _rows(ins.weights_figure.data[0].z) == hw.values.tolist() and ins.state["head_weights"] == hw.weights
    with pytest.raises(FileNotFoundError, match="nowhere.pt"):
        InvarianceInspector([tmp_path / "nowhere.pt"], "keywords")


def _player_audio_at(out_widget, k):
    "Samples and rate of the k-th output of an Output widget (an IPython.display.Audio)."
    b64 = re.search(r'src="data:audio/wav;base64,([^"]+)"', out_widget.outputs[k]["data"]["text/html"]).group(1)
    return sf.read(io.BytesIO(base64.b64decode(b64)))


def test_explore_invariance_notebook_executes(monkeypatch):
    import nbformat
    from nbclient import NotebookClient
    nb = nbformat.read(EXPLORE_INVARIANCE, as_version=4)
    pp = os.environ.get("PYTHONPATH")
    monkeypatch.setenv("PYTHONPATH", f"{ROOT}{os.pathsep}{pp}" if pp else str(ROOT))   # the kernel imports this checkout
    monkeypatch.setenv("IN_TEST", "1")                     # the notebook's tiny sizes, as nbdev-test runs it
    NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(EXPLORE_INVARIANCE.parent)}}).execute()
    outs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outs if o.output_type == "error"]
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outs), "the inspector is displayed"
    state = next(o["data"]["text/plain"] for o in outs if "'augmentation'" in o.get("data", {}).get("text/plain", ""))
    for part in ("'set': 'all sets'", "'n_values': 2", "'keywords': 8", "'cont_only / contrastive'", "'mt_parallel / predictive'"):
        assert part in state, (part, state)
    table = next(o["data"]["text/markdown"] for o in outs if "text/markdown" in o.get("data", {}))
    assert "| mt_parallel / predictive |" in table


# ---- the browser test -----------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_server(proc, url, log, deadline):
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"JupyterLab exited with code {proc.returncode} before serving:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200: return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"JupyterLab did not answer {url.split('?')[0]} within the time limit:\n{log.read_text()[-3000:]}")


def _stop_server(proc, base, token):
    "Ask the server to shut down (it stops its kernels), then make sure its process group is gone."
    try:
        req = urllib.request.Request(f"{base}/api/shutdown", method="POST", headers={"Authorization": f"token {token}"})
        urllib.request.urlopen(req, timeout=5).close()
    except OSError:
        pass
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)
        try: proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL); proc.wait(timeout=5)


def test_explorer_renders_and_responds_in_chromium(tmp_path):
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} not found: the browser test needs Debian's chromium "
                    "(listed in scripts/debian-packages.txt; `make test` installs it when run as root, "
                    "or run `apt-get install chromium`)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the browser test needs the playwright package (in the dev extra): pip install -e '.[dev]'")
    deadline = time.monotonic() + 150
    # JupyterLab serves a copy of the notebook from a fresh folder: autosave must never touch nbs/.
    work = tmp_path / "lab"
    work.mkdir()
    shutil.copy(EXPLORE, work / EXPLORE.name)
    port, token = _free_port(), os.urandom(16).hex()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MTSLVR_DATA": str(ROOT / "data"), "OMP_NUM_THREADS": "1",
           "JUPYTER_CONFIG_DIR": str(tmp_path / "config"), "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "ws")}
    # no "Jupyter news?" toast over the picture
    notes = tmp_path / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notes.parent.mkdir(parents=True)
    notes.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    log = tmp_path / "jupyterlab.log"
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--port-retries=0",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={work}", "--ServerApp.allow_root=True",
           "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    with open(log, "w") as logf:
        proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_for_server(proc, f"{base}/api/status?token={token}", log, min(deadline, time.monotonic() + 60))
        with sync_playwright() as pw:
            ctx = pw.chromium.launch_persistent_context(
                str(tmp_path / "chromium-profile"), executable_path=str(CHROMIUM), headless=True,
                viewport={"width": 1400, "height": 2000},
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                      "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"])
            try:
                page = ctx.pages[0] if ctx.pages else ctx.new_page()
                errors = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                left = lambda: max(1000, int((deadline - time.monotonic()) * 1000))  # ms to the deadline
                page.goto(f"{base}/lab/tree/{EXPLORE.name}?token={token}", timeout=left())
                page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=left())
                # run every cell once the kernel is up (the app is exposed by --LabApp.expose_app_in_browser)
                page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                                       " && window.jupyterapp.shell.currentWidget.sessionContext", timeout=left())
                page.evaluate("""async () => {
                    const nb = window.jupyterapp.shell.currentWidget;
                    await nb.context.ready; await nb.sessionContext.ready;
                    await window.jupyterapp.commands.execute('notebook:run-all-cells');
                }""")
                button = page.get_by_role("button", name="new views")
                button.wait_for(state="visible", timeout=left())
                params = page.locator(".mtslvr-params")
                page.wait_for_function("() => document.querySelector('.mtslvr-params')"
                                       " && document.querySelector('.mtslvr-params').innerText.includes('seed 0')", timeout=left())
                page.wait_for_selector(".js-plotly-plot .scatterlayer .trace", timeout=left())
                n_traces = page.locator(".js-plotly-plot .scatterlayer .trace").count()
                n_heatmaps = page.locator(".js-plotly-plot .heatmaplayer image, .js-plotly-plot .heatmaplayer .hm").count()
                n_audio = page.locator(".jp-OutputArea audio").count()
                before = params.inner_text()
                button.click()
                page.wait_for_function("() => document.querySelector('.mtslvr-params').innerText.includes('seed 1')",
                                       timeout=left())
                after = params.inner_text()
                page.wait_for_timeout(500)  # let plotly finish redrawing before the picture
                # the explorer's output from its top: the notebook scrolls inside its panel, not the page
                page.evaluate("() => document.querySelector('.mtslvr-params').closest('.jp-OutputArea-output')"
                              ".scrollIntoView({block: 'start'})")
                page.wait_for_timeout(300)
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                shot = ARTIFACTS / "augmentation_explorer.png"
                page.screenshot(path=str(shot), timeout=left())
                print(f"\nscreenshot: {shot}")
            finally:
                ctx.close()
        assert n_traces >= 3, f"expected 3 waveform traces drawn by plotly, found {n_traces}"
        assert n_heatmaps >= 3, f"expected 3 spectrogram heatmaps drawn by plotly, found {n_heatmaps}"
        assert n_audio == 3, f"expected 3 audio players, found {n_audio}"
        assert "seed 0" in before and "seed 1" in after and before != after, (before, after)
        rows = lambda t: [l for l in t.splitlines() if re.match(r"\d+\. \w+", l.strip())]
        assert rows(before) and rows(before) != rows(after), "the parameters shown must change after 'new views'"
        assert not [e for e in errors if "plotly" in e.lower() or "widget" in e.lower()], errors
    finally:
        _stop_server(proc, base, token)
    assert proc.poll() is not None, "JupyterLab is still running"
