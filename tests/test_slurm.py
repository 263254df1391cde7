"""Jobs on a real one-node Slurm cluster (the `slurm` fixture of conftest.py, tests/slurm_cluster.py): a job array
whose tasks run side by side, submitit jobs and arrays returning results, one array task cancelled while the
other completes, and a preempted checkpointable job requeued and resumed, with the states read back from Slurm's
accounting (sacct), as submitit reads them."""
import os
import sys
import time
from pathlib import Path

import cloudpickle
import pytest
import submitit
from slurm_cluster import SlurmCluster, SlurmClusterError

# The job functions below live in this test module, which the job's Python cannot import: pickle them by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def _wait_file(path: Path, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline: return False
        time.sleep(0.05)
    return True


def test_cluster_is_configured_as_intended(slurm):
    node = slurm.run("scontrol", "show", "node", slurm.node)
    assert "State=IDLE" in node and f"CPUTot={slurm.cpus}" in node, node
    conf = slurm.run("scontrol", "show", "config")
    for want in ("select/cons_tres", "CR_CPU", "proctrack/linuxproc", "task/none", "accounting_storage/slurmdbd"):
        assert want in conf, want
    assert slurm.cluster_name in slurm.run("sacctmgr", "-n", "-P", "list", "cluster", "format=Cluster")
    # The fixture changed this test's environment only; the session's cluster object keeps its own.
    assert os.environ["SLURM_CONF"] == slurm.env["SLURM_CONF"] == str(slurm.conf)


def test_environment_is_untouched_without_the_slurm_fixture(slurm_cluster):
    assert os.environ.get("SLURM_CONF") != str(slurm_cluster.conf)


def test_a_daemon_that_cannot_start_is_an_error_showing_its_log():
    "What the fixture turns into a test failure (never a skip): here slurmctld cannot load its scheduler."
    c = SlurmCluster(extra_conf="SchedulerType=sched/nonexistent")
    try:
        with pytest.raises(SlurmClusterError) as e:
            c.start()
        msg = str(e.value)
        assert msg.startswith("slurmctld exited with code 1 while starting"), msg[:500]
        first_log = msg.split("--- ")[1]
        assert "slurmctld" in first_log.splitlines()[0] and "sched/nonexistent" in first_log, msg[:2000]
        assert all(p.poll() is not None for p in c.procs.values()), "the daemons that did start were stopped"
    finally:
        c.stop()


def test_missing_slurm_programs_are_an_error_naming_the_packages(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # start() adds /usr/sbin (the daemons), not /usr/bin (the clients)
    c = SlurmCluster(root=tmp_path / "c")
    with pytest.raises(SlurmClusterError, match=r"needs \['sbatch'.*scripts/debian-packages.txt"):
        c.start()
    assert not c.procs


def test_sbatch_array_tasks_run_side_by_side_and_sacct_reports_completed(slurm, tmp_path):
    # Each task waits (up to 30 s) to see the other's start file: both complete only if they ran at once.
    script = ('touch {d}/start_$SLURM_ARRAY_TASK_ID; other={d}/start_$((1 - SLURM_ARRAY_TASK_ID)); '
              'for i in $(seq 300); do [ -e $other ] && exit 0; sleep 0.1; done; exit 3').format(d=tmp_path)
    jid = slurm.sbatch("--array=0-1", "--cpus-per-task=1", f"--partition={slurm.partition}",
                       f"--output={tmp_path}/%A_%a.out", "--wrap", script)
    states = slurm.wait(jid, n=2, timeout=60)
    assert states == {f"{jid}_0": "COMPLETED", f"{jid}_1": "COMPLETED"}, (states, slurm.logs())
    # Slurm's own record: both exited 0, and their run times overlap (each started before the other ended).
    out = slurm.run("sacct", "-X", "-n", "-P", "-o", "JobID,Start,End,ExitCode", "-j", jid)
    rows = [l.split("|") for l in out.splitlines()]
    assert [r[3] for r in rows] == ["0:0", "0:0"], out
    assert max(r[1] for r in rows) <= min(r[2] for r in rows), out


def square_and_where(x):
    return x * x, os.environ["SLURM_JOB_ID"], os.environ.get("SLURM_ARRAY_TASK_ID"), sys.executable


def _executor(slurm, folder):
    ex = submitit.AutoExecutor(folder=folder, cluster="slurm")
    ex.update_parameters(slurm_partition=slurm.partition, timeout_min=5, cpus_per_task=1, slurm_signal_delay_s=10)
    return ex


def test_submitit_job_and_map_array_return_results(slurm, tmp_path):
    ex = _executor(slurm, tmp_path / "submitit")
    job = ex.submit(square_and_where, 7)
    y, job_id, task, python = job.result()
    assert (y, job_id, task) == (49, job.job_id, None)
    assert python == sys.executable  # the job ran with this project's venv python
    jobs = ex.map_array(square_and_where, [1, 2, 3])
    results = [j.result() for j in jobs]
    assert [r[0] for r in results] == [1, 4, 9]
    assert sorted(r[2] for r in results) == ["0", "1", "2"]
    array_id = jobs[0].job_id.split("_")[0]
    assert {j.job_id for j in jobs} == {f"{array_id}_{i}" for i in range(3)}
    # submitit reads the states from sacct (its watcher's command); each job and array task is COMPLETED.
    done = slurm.wait(array_id, n=3)
    assert set(done.values()) == {"COMPLETED"}, done
    for j in [job, *jobs]:
        assert j.get_info(mode="force")["State"] == "COMPLETED", j.get_info()


def start_then_wait(i, folder):
    folder = Path(folder)
    (folder / f"started_{i}").touch()
    # Task 0 waits to be cancelled; task 1 waits for the test to let it finish.
    if not _wait_file(folder / ("never" if i == 0 else "release"), timeout=120):
        raise TimeoutError(f"task {i} was not released")
    return i


def test_scancel_of_one_array_task_leaves_the_other_to_complete(slurm, tmp_path):
    flags = tmp_path / "flags"
    flags.mkdir()
    ex = _executor(slurm, tmp_path / "submitit")
    jobs = ex.map_array(start_then_wait, [0, 1], [str(flags)] * 2)
    assert all(_wait_file(flags / f"started_{i}", 60) for i in (0, 1)), slurm.run("squeue")
    slurm.run("scancel", jobs[0].job_id)
    array_id = jobs[0].job_id.split("_")[0]
    slurm.wait_for(lambda: slurm.sacct(array_id).get(jobs[0].job_id) == "CANCELLED", timeout=30,
                   what=f"{jobs[0].job_id} CANCELLED in sacct")
    assert slurm.sacct(array_id)[jobs[1].job_id] == "RUNNING"
    (flags / "release").touch()
    assert jobs[1].result() == 1
    assert slurm.wait(array_id, n=2) == {jobs[0].job_id: "CANCELLED", jobs[1].job_id: "COMPLETED"}
    # What submitit reports: the cancelled task has no result, and its state says so.
    assert jobs[0].get_info(mode="force")["State"].startswith("CANCELLED")
    assert jobs[0].done()
    # result() waits 15 s for a missing result file by default (for slow shared file systems); not here.
    jobs[0]._results_timeout_s = 1
    with pytest.raises(submitit.core.utils.UncompletedJobError, match="CANCELLED"):
        jobs[0].result()


class Ticker(submitit.helpers.Checkpointable):
    "Counts to `until`, logging `restart count, n` per tick; submitit pickles it (with `n`) when it is requeued."
    def __init__(self): self.n = 0

    def __call__(self, log, until):
        while self.n < until:
            with open(log, "a") as f: f.write(f"{os.environ.get('SLURM_RESTART_COUNT', '0')} {self.n}\n")
            time.sleep(0.1)
            self.n += 1
        return self.n


def test_submitit_requeues_a_preempted_checkpointable_job_which_resumes_from_its_state(slurm, tmp_path):
    "The signals of a preemption (SIGTERM, then USR2), as submitit's own `_interrupt` sends them with scancel."
    log = tmp_path / "ticks"
    ex = _executor(slurm, tmp_path / "submitit")
    job = ex.submit(Ticker(), str(log), 60)
    slurm.wait_for(lambda: log.exists() and len(log.read_text().splitlines()) >= 5, timeout=60, what="ticks")
    job._interrupt()
    assert job.result() == 60
    runs = {}
    for line in log.read_text().splitlines():
        restart, n = map(int, line.split())
        runs.setdefault(restart, []).append(n)
    assert sorted(runs) == [0, 1], runs  # requeued once: Slurm counts it in SLURM_RESTART_COUNT
    assert runs[1][0] in (runs[0][-1], runs[0][-1] + 1) and runs[1][-1] == 59, runs  # resumed, not restarted
    states = slurm.run("sacct", "-D", "-X", "-n", "-P", "-o", "State", "-j", job.job_id).split()
    assert states == ["REQUEUED", "COMPLETED"], states
