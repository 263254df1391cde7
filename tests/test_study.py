"""`mtslvr study` as a user runs it: a tiny 2 x 1 grid through the local executor (real processes), a re-run that
reuses its cells, a failing cell whose error `status` shows while the other finishes, and bad input (exit 2)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mtslvr.audio import save_audio

EXE = Path(sys.executable).parent / "mtslvr"
TINY = ["width=4", "depths=1,1,1,1", "out_dim=16", "batch_size=4", "steps=6", "clip_seconds=0.5", "val_every=0",
        "checkpoint_every=2", "log_every=1", "device=cpu", "workers=0"]
SMALL_EVAL = ["--tasks", "10", "--clips", "4", "--seconds", "0.5", "--values", "2"]


def run(*args, env=None, **kw):
    return subprocess.run([str(EXE), *args], capture_output=True, text=True, timeout=300, env=env, **kw)


def tiny_study_args(data, *sets):
    return [a for s in TINY + list(sets) for a in ("--set", s)] + SMALL_EVAL + ["--data", str(data)]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    "One small set: 7 classes of tones (2 pre-training, 5 test), 6 one-second clips each."
    root = tmp_path_factory.mktemp("data")
    t = torch.arange(16000) / 16000
    classes = [f"c{i}" for i in range(7)]
    for i, c in enumerate(classes):
        for j in range(6):
            save_audio(root / "toy" / "audio" / c / f"{j}.flac", 0.3 * torch.sin(2 * torch.pi * (150 * (i + 1) + 20 * j) * t))
    (root / "toy" / "split.json").write_text(json.dumps(dict(
        name="toy", description="synthetic tones", synthetic=True, sample_rate=16000, piece_seconds=0.5,
        train=classes[:2], val=[], test=classes[2:])))
    return root


def test_a_2x1_study_runs_in_local_processes_and_a_rerun_reuses_its_cells(data, tmp_path):
    study = tmp_path / "study"
    args = ["study", "run", str(study), "--set", "seed=0,1", "--set", "variant=mt_parallel", "--executor", "local",
            "--workers", "2", *tiny_study_args(data)]
    r = run(*args)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    cells = {d.name: json.loads((d / "state.json").read_text()) for d in study.iterdir() if (d / "state.json").is_file()}
    assert sorted(cells) == ["seed-0", "seed-1"]
    for name, rec in cells.items():
        assert rec["state"] == "finished" and rec["pretrain"] == "trained", rec
        assert rec["settings"]["config"]["seed"] == int(name[-1]) and rec["settings"]["evaluation"]["eval_seed"] == 0
        assert json.loads((study / name / "cell.json").read_text()) == dict(variant="mt_parallel", method="simclr", seed=int(name[-1]))
        assert (study / name / "model" / "encoder.pt").is_file()
        assert (study / name / "evaluation" / "results.json").is_file() and (study / name / "analysis" / "summary.json").is_file()
    assert cells["seed-0"]["pid"] != cells["seed-1"]["pid"] != os.getpid()   # one process per cell
    # the two seeds' weights differ; their evaluation tasks are the same (eval_seed)
    w = [torch.load(study / n / "model" / "encoder.pt", weights_only=True) for n in ("seed-0", "seed-1")]
    assert any(not torch.equal(a, w[1]["state_dict"][k]) for k, a in w[0]["state_dict"].items() if a.is_floating_point())
    s = run("study", "status", str(study))
    assert s.returncode == 0 and "| seed-0 | finished |" in s.stdout and "6/6" in s.stdout and "2 finished" in s.stdout, s.stdout
    again = run(*args)
    assert again.returncode == 0 and "2 finished, 0 to run" in again.stdout, again.stdout + again.stderr
    assert {n: json.loads((study / n / "state.json").read_text())["updated"] for n in cells} == {n: r["updated"] for n, r in cells.items()}
    plan = run(*args[:-len(tiny_study_args(data))], *tiny_study_args(data), "--dry-run")
    assert plan.returncode == 0 and "seed-0: finished" in plan.stdout and "0 to run" in plan.stdout, plan.stdout + plan.stderr


def test_a_failing_cell_shows_its_error_in_status_and_the_other_finishes(data, tmp_path):
    study = tmp_path / "study"
    # lr=1e30: the first step's update makes the loss non-finite, a real failure of pre-training
    r = run("study", "run", str(study), "--set", "lr=0.001,1e30", "--set", "variant=cont_only", *tiny_study_args(data))
    assert r.returncode == 1, r.stdout[-2000:] + r.stderr[-2000:]
    s = run("study", "status", str(study))
    assert s.returncode == 1
    assert "| lr-0.001 | finished |" in s.stdout and "| lr-1e+30 | failed |" in s.stdout, s.stdout
    err = json.loads((study / "lr-1e+30" / "state.json").read_text())["error"]
    assert err and err.split(":")[0] in s.stdout and err[:60] in s.stderr, (err, s.stdout, s.stderr)


def test_a_ddp_cell_pretrains_with_two_processes_through_torchrun(data, tmp_path):
    "--procs-per-cell 2 (gloo on CPU here; one process per GPU on CUDA): the cell's run is one 2-process DDP run."
    study, grid = tmp_path / "study", tmp_path / "grid.yaml"
    grid.write_text("seed: [0]\nvariant: cont_only\n")
    args = ["study", "run", str(study), "--grid", str(grid), "--executor", "local", *tiny_study_args(data)]
    r = run(*args, "--procs-per-cell", "2")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    rec = json.loads((study / "seed-0" / "state.json").read_text())
    assert rec["state"] == "finished" and rec["procs"] == 2 and rec["settings"]["procs"] == 2 and rec["pretrain"] == "trained", rec
    run_rec = json.loads((study / "seed-0" / "model" / "config.json").read_text())
    assert run_rec["world_size"] == 2 and [s["end"]["reason"] for s in run_rec["segments"]] == ["finished"], run_rec
    log = (study / "seed-0" / "ddp.log").read_text()
    assert "-m torch.distributed.run --standalone --nproc-per-node 2 -m mtslvr.cli pretrain --config" in log, log[-2000:]
    assert (study / "seed-0" / "evaluation" / "results.json").is_file() and (study / "seed-0" / "analysis" / "summary.json").is_file()
    # another number of processes is another cell: refused before anything runs, as is a batch that does not split
    for procs, msg in (("1", "procs: 2 -> 1"), ("3", "batch_size 4 does not split evenly over 3 processes")):
        again = run(*args, "--procs-per-cell", procs)
        assert again.returncode == 2 and msg in again.stderr, (procs, again.stdout[-1000:], again.stderr[-2000:])
    assert json.loads((study / "seed-0" / "state.json").read_text()) == rec


def test_bad_input_is_refused_with_exit_2_naming_it(data, tmp_path, capsys, monkeypatch):
    "In process (mtslvr.cli.main, what the entry point runs; one case through the installed command as well)."
    from mtslvr.cli import main

    def refused(*args):
        rc = main(list(args))
        return rc, capsys.readouterr().err
    (tmp_path / "empty.yaml").write_text("seed: []\nsteps: 6\n")
    (tmp_path / "outer" / "inner").mkdir(parents=True)   # a study folder holding another study
    (tmp_path / "outer" / "inner" / "study.json").write_text(json.dumps({"axes": {"seed": [0]}}) + "\n")
    cases = [
        (["--set", "seeed=0,1"], "seeed"),
        (["--set", "seed=0,"], "empty value in axis 'seed'"),
        (["--set", "steps=6"], "no grid"),
        (["--grid", str(tmp_path / "empty.yaml")], "axis 'seed' has no values"),
    ]
    for extra, msg in cases:
        rc, err = refused("study", "run", str(tmp_path / "s"), *extra)
        assert rc == 2 and msg in err, (extra, rc, err)
    rc, err = refused("study", "run", str(tmp_path / "outer"), "--set", "seed=0,1", *tiny_study_args(data))
    assert rc == 2 and "holds another study" in err and "inner" in err, err
    rc, err = refused("study", "status", str(tmp_path))
    assert rc == 2 and "not a study folder" in err, err
    # the slurm executor where sbatch is not on the PATH (only the venv's programs are)
    r = run("study", "run", str(tmp_path / "s2"), "--set", "seed=0,1", "--executor", "slurm", env=dict(os.environ, PATH=str(EXE.parent)))
    assert r.returncode == 2 and "sbatch" in r.stderr and "PATH" in r.stderr, r.stderr
    monkeypatch.setenv("PATH", str(EXE.parent))
    rc, err = refused("study", "run", str(tmp_path / "s2"), "--set", "seed=0,1", "--executor", "slurm")
    assert rc == 2 and "sbatch" in err, err
    assert not (tmp_path / "s2").exists()


def test_the_readme_preset_plans_15_cells_with_an_estimate(tmp_path, capsys):
    "nbs/studies/readme.yaml (the README's study): 3 seeds x the demo's five variants at the demo's settings; --dry-run runs nothing."
    from mtslvr.cli import main
    from mtslvr.demo import DEMO_PROFILES, DEMO_VARIANTS
    grid = Path(__file__).parents[1] / "nbs" / "studies" / "readme.yaml"
    rc = main(["study", "run", str(tmp_path / "s"), "--grid", str(grid), "--executor", "local", "--workers", "2",
               "--dry-run", "--seconds-per-step", "0.25"])
    out = capsys.readouterr().out
    assert rc == 0, out
    lines = [l.strip() for l in out.splitlines() if l.startswith("  ")]
    steps = DEMO_PROFILES["demo"]["pretrain"]["steps"]
    want = [f"variant-{v}_seed-{s}: pending, {steps} steps, about {steps * 0.25:.0f} s" for v in DEMO_VARIANTS for s in (0, 1, 2)]
    assert lines == want, out
    assert f"15 cells, 15 to run, about {15 * steps * 0.25:.0f} s of work" in out, out
    assert not (tmp_path / "s").exists()


def test_a_dry_run_before_any_cell_ran_measures_the_rate_here(data, tmp_path):
    r = run("study", "run", str(tmp_path / "s"), "--set", "seed=0,1", *tiny_study_args(data), "--dry-run")
    assert r.returncode == 0, r.stdout + r.stderr
    lines = [l.strip() for l in r.stdout.splitlines()]
    assert [l.split(", about")[0] for l in lines[:2]] == ["seed-0: pending, 6 steps", "seed-1: pending, 6 steps"], r.stdout
    assert "2 cells, 2 to run, about" in r.stdout and "measured here: 3 steps of seed-0 in this process, 1 thread(s)" in r.stdout, r.stdout
    assert "plus each cell's evaluation" in r.stdout and not (tmp_path / "s").exists(), r.stdout


@pytest.fixture(scope="module")
def data_val(tmp_path_factory) -> Path:
    "One small set with validation classes: 10 classes of tones (2 pre-training, 3 validation, 5 test), 6 one-second clips each."
    root = tmp_path_factory.mktemp("data_val")
    t = torch.arange(16000) / 16000
    classes = [f"c{i}" for i in range(10)]
    for i, c in enumerate(classes):
        for j in range(6):
            save_audio(root / "toy" / "audio" / c / f"{j}.flac", 0.3 * torch.sin(2 * torch.pi * (150 * (i + 1) + 20 * j) * t))
    (root / "toy" / "split.json").write_text(json.dumps(dict(
        name="toy", description="synthetic tones", synthetic=True, sample_rate=16000, piece_seconds=0.5,
        train=classes[:2], val=classes[2:5], test=classes[5:])))
    return root


def test_select_lr_chooses_on_the_validation_classes_and_reports_the_chosen_rate_on_the_test_classes(data_val, tmp_path, capsys):
    "A 2-lr x 1-variant study through the debug executor (in process); the choice reads only the validation evaluations."
    from mtslvr.cli import main
    from mtslvr.study_report import load_cell_results, load_cell_validation, report
    s = tmp_path / "study"
    args = ["study", "run", str(s), "--set", "lr=0.001,0.03", "--set", "variant=cont_only", *tiny_study_args(data_val)]
    assert main([*args, "--select", "lr"]) == 0, capsys.readouterr()
    for n in ("lr-0.001", "lr-0.03"):
        cfg = json.loads((s / n / "validation" / "toy" / "results.json").read_text())["config"]
        assert cfg["part"] == "val" and cfg["n_way"] == 3, cfg   # 3 validation classes: 3-way tasks
    val = {lr: load_cell_validation(s / f"lr-{lr}")["toy"][1] for lr in (0.001, 0.03)}
    m = {lr: [float(val[lr][k].mean()) for k in (1, 5)] for lr in val}
    o = {0.001: 0.03, 0.03: 0.001}
    rank = {lr: sum(1 if m[lr][i] > m[o[lr]][i] else 2 if m[lr][i] < m[o[lr]][i] else 1.5 for i in range(2)) / 2 for lr in m}
    want = min(m, key=lambda lr: (rank[lr], -sum(m[lr]) / 2, lr))   # best average rank; ties: higher mean, then the grid's order
    capsys.readouterr()
    assert main(["study", "report", str(s), "--select", "lr"]) == 0
    out = capsys.readouterr().out
    assert "toy 3-way" in out and "the test classes are not used" in out, out
    chosen = [l for l in out.splitlines() if l.startswith("| cont_only simclr | ") and l.endswith("| yes |")]
    assert len(chosen) == 1 and chosen[0].split(" | ")[1] == f"{want:g}", out
    rep = report(s, out=None, select="lr")
    test_acc = load_cell_results(s / f"lr-{want}")[1]
    assert rep.rows == ["cont_only simclr"] and rep.mean[0, 0, 0] == pytest.approx(float(test_acc[1]["toy"].mean())), rep.rows
    # the test classes never influence the choice: swap the two cells' test evaluations; the choice stays, the test table follows
    other = load_cell_results(s / f"lr-{o[want]}")[1][1]["toy"]
    a, b = s / "lr-0.001" / "evaluation", s / "lr-0.03" / "evaluation"
    a.rename(tmp_path / "tmp"); b.rename(a); (tmp_path / "tmp").rename(b)
    again = report(s, out=None, select="lr")
    assert again.selection == rep.selection and again.mean[0, 0, 0] == pytest.approx(float(other.mean()))
    # bad input: --select lr without an lr axis; a report --select lr of cells without validation evaluations
    assert main(["study", "run", str(tmp_path / "s2"), "--set", "seed=0,1", "--select", "lr"]) == 2
    assert "no lr axis" in capsys.readouterr().err
    import shutil
    shutil.copytree(s, tmp_path / "s3")
    for n in ("lr-0.001", "lr-0.03"): shutil.rmtree(tmp_path / "s3" / n / "validation")
    assert main(["study", "report", str(tmp_path / "s3"), "--select", "lr"]) == 2
    assert "no validation evaluation" in capsys.readouterr().err
