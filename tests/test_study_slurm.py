"""`mtslvr study run --executor slurm` on the real one-node Slurm cluster (tests/slurm_cluster.py): a 2 x 2 tiny
study as one job array; an array task cancelled mid-run (`scancel`) whose cell alone a re-run finishes, resumed
from its last checkpoint, while the other task, preempted (submitit's signals), is requeued by Slurm and resumes its
cell. Nothing is mocked."""
import json
import os
import subprocess
import time

import submitit

from test_study import EXE, data, tiny_study_args  # noqa: F401  (the `data` fixture: one small set)


def study(*args, timeout=240):
    return subprocess.run([str(EXE), "study", *args], capture_output=True, text=True, timeout=timeout, env=dict(os.environ))


def cell(folder, name):
    p = folder / name / "state.json"
    return json.loads(p.read_text()) if p.is_file() else {}


def test_a_2x2_study_runs_as_a_slurm_job_array(slurm, data, tmp_path, capsys):
    s = tmp_path / "study"
    r = study("run", str(s), "--set", "variant=cont_only,mt_parallel", "--set", "seed=0,1", "--executor", "slurm",
              "--partition", slurm.partition, "--time-min", "5", "--cpus", "1", *tiny_study_args(data))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:] + slurm.logs()
    names = [f"variant-{v}_seed-{i}" for v in ("cont_only", "mt_parallel") for i in (0, 1)]
    recs = {n: cell(s, n) for n in names}
    assert all(r["state"] == "finished" for r in recs.values()), recs
    jobs = {r["job"] for r in recs.values()}
    array = {j.split("_")[0] for j in jobs}
    assert len(jobs) == 4 and len(array) == 1, jobs   # one array, one task per cell
    assert slurm.wait(array.pop(), n=4) == {j: "COMPLETED" for j in jobs}
    st = study("status", str(s))
    assert st.returncode == 0 and "4 finished" in st.stdout, st.stdout
    # the aggregated table over the two seeds (`mtslvr study report`, in process: mtslvr.cli.main, what the command runs)
    from mtslvr.cli import main
    capsys.readouterr()
    assert main(["study", "report", str(s)]) == 0
    out = capsys.readouterr().out
    assert "| row | seeds | toy | avg. rank |" in out, out
    for row in ("cont_only simclr", "mt_parallel simclr"):
        assert sum(line.startswith(f"| {row} | 2 | ") for line in out.splitlines()) >= 1, out   # each row over both seeds
    assert "| mt_parallel simclr | cont_only simclr |" in out and "Not finished" not in out, out
    findings = out.split("Findings:")[1].strip().splitlines()
    assert findings and all(f.startswith("- ") and "mt_parallel simclr vs cont_only simclr" in f and "over 2 seeds" in f
                            for f in findings), out
    assert json.loads((s / "report" / "report.json").read_text())["cells"] == sorted(names)


def test_a_cancelled_cell_is_the_only_one_a_rerun_runs_and_a_preempted_one_is_requeued_and_resumes(slurm, data, tmp_path):
    s = tmp_path / "study"
    args = ["run", str(s), "--set", "seed=0,1", "--set", "variant=cont_only", "--executor", "slurm",
            "--partition", slurm.partition, "--time-min", "5", "--cpus", "1", *tiny_study_args(data, "steps=200")]  # longer than Slurm's KillWait (5 s)
    r = study(*args, "--no-wait")
    assert r.returncode == 0, r.stdout + r.stderr
    ckpt = lambda n: (s / n / "model" / "checkpoints" / "last.pt").is_file() and cell(s, n).get("state") == "running"
    slurm.wait_for(lambda: ckpt("seed-0") and ckpt("seed-1"), timeout=120, what="both cells running with a checkpoint")
    victim, preempted = cell(s, "seed-0")["job"], cell(s, "seed-1")["job"]
    slurm.run("scancel", victim)
    submitit.SlurmJob(folder=s / "submitit", job_id=preempted)._interrupt()   # preemption: SIGTERM, then the requeue signal
    slurm.wait_for(lambda: cell(s, "seed-1").get("state") == "finished" and not slurm.run("squeue", "-h").strip(),
                   timeout=180, what="seed-1 finished and the queue empty")
    assert slurm.sacct(victim.split("_")[0])[victim] == "CANCELLED"
    rec = cell(s, "seed-1")   # requeued once by Slurm (SLURM_RESTART_COUNT), the same job, resumed from its checkpoint
    assert rec["job"] == preempted and rec["restarts"] == 1 and rec["pretrain"] == "resumed", rec
    st = study("status", str(s))
    assert "| seed-0 | interrupted |" in st.stdout and "| seed-1 | finished |" in st.stdout, st.stdout
    done = cell(s, "seed-1")
    again = study(*args)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:] + slurm.logs()
    assert "1 finished, 1 to run" in again.stdout, again.stdout
    rec = cell(s, "seed-0")
    # cancelled during pre-training it resumes from the checkpoint; during the evaluation (Slurm's KillWait gives the
    # tiny run seconds to finish its steps) it reuses the finished encoder; it ran again either way, in a new job
    assert rec["state"] == "finished" and rec["how"] == "ran" and rec["pretrain"] in ("resumed", "reused") and rec["job"] != victim, rec
    assert cell(s, "seed-1") == done   # the finished cell was not run again


def test_a_ddp_cell_is_an_srun_torchrun_step_that_stops_at_its_time_limit_with_a_checkpoint_and_resumes(slurm, data, tmp_path):
    "2 processes per cell (gloo on CPU): the cell's pre-training is a step of its job; submitit's time-limit signal stops it at a step boundary."
    s, grid = tmp_path / "study", tmp_path / "grid.yaml"
    grid.write_text("seed: [0]\nvariant: cont_only\n")
    r = study("run", str(s), "--grid", str(grid), "--executor", "slurm", "--partition", slurm.partition, "--time-min", "5",
              "--procs-per-cell", "2", *tiny_study_args(data, "steps=150"), "--no-wait")
    assert r.returncode == 0, r.stdout + r.stderr
    ckpt = (s / "seed-0" / "model" / "checkpoints" / "last.pt")
    slurm.wait_for(lambda: ckpt.is_file() and cell(s, "seed-0").get("state") == "running", timeout=120, what="the DDP cell running with a checkpoint")
    job = cell(s, "seed-0")["job"]
    submitit.SlurmJob(folder=s / "submitit", job_id=job)._interrupt(timeout=True)   # what Slurm sends before the time limit: USR2 alone
    slurm.wait_for(lambda: cell(s, "seed-0").get("state") == "finished" and not slurm.run("squeue", "-h").strip(),
                   timeout=180, what="the cell finished and the queue empty")
    rec = cell(s, "seed-0")
    assert rec["job"] == job and rec["restarts"] == 1 and rec["pretrain"] == "resumed" and rec["procs"] == 2, rec
    run_rec = json.loads((s / "seed-0" / "model" / "config.json").read_text())
    segs = run_rec["segments"]
    assert run_rec["world_size"] == 2 and len(segs) == 2, segs
    # the first segment stopped at a step boundary (SIGTERM from the cell's job, through srun and the wrapper), with a
    # checkpoint of that very step, which the second continued from
    assert segs[0]["end"]["reason"] == "stopped (SIGTERM)" and segs[1]["start_step"] == segs[0]["end"]["step"], segs
    assert segs[1]["end"] == {"step": 150, "reason": "finished"}, segs
    steps = slurm.run("sacct", "-n", "-P", "-j", job, "-o", "JobID,JobName,State").split()
    assert sum(f"{job}.1|bash|" in line for line in steps) == 1, steps   # torchrun's step (srun ... bash -c WRAPPER torchrun ...)
    log = (s / "seed-0" / "ddp.log").read_text()
    assert log.count("srun --overlap") == 2 and "stopped at step" in log, log[-3000:]
