"""A real one-node Slurm cluster on localhost for the tests: munged, mariadbd, slurmdbd, slurmctld and slurmd,
each a child process of the test run (no systemd, nothing installed or changed outside a temporary folder).

`SlurmCluster.start()` (what the `slurm_cluster` fixture of tests/conftest.py calls once per session, only when
a test asks for it) writes a munge key, `slurm.conf`, `slurmdbd.conf` and an empty `plugstack.conf` into a fresh
folder under /tmp, starts the five daemons on free localhost ports, registers the cluster in the accounting
database (`sacctmgr add cluster`) and waits until the node is idle. `stop()` cancels what is left, stops every
daemon (and any job step still running, found by the cluster's SLURM_CONF in its environment) and removes the
folder. A daemon that cannot start raises `SlurmClusterError` carrying the daemon's log: the fixture turns it
into a test failure, never a skip.

The cluster:
- one node named after `hostname -s`, with the CPUs, sockets, cores, threads and memory `slurmd -C` reports;
  one partition, `debug` (the default), no time limit;
- `select/cons_tres` with `CR_CPU`: each CPU is a schedulable unit, so the tasks of a job array that ask for
  one CPU each run side by side (as many as the node has CPUs);
- `proctrack/linuxproc`, `task/none` (no cgroups needed), `jobacct_gather/none`;
- accounting through slurmdbd backed by its own mariadbd (a fresh data folder, a socket only, no TCP), so
  `sacct` reports job and array-task states, which is what submitit's job watcher reads;
- `KillWait=5`: `scancel` and time limits send SIGTERM, then SIGKILL 5 s later (Slurm's default is 30 s);
- fast turn-around for tests: a submitted job is scheduled at once (`batch_sched_delay=0`), pending jobs are
  looked at every 2 s (`sched_interval=2`), and a requeued job (`scontrol requeue`, as submitit does on
  preemption) may start again 10 s later (`AuthInfo=...,cred_expire=10`; Slurm's default hold is 120 s).

The daemons run as the user running the tests (root in CI, the only case tested); jobs run as the user who
submits them. Associations are not enforced: `sbatch --account=NAME` takes any name and sacct records it.
`stop()` also runs at interpreter exit if nothing called it. The daemons get SIGTERM from the kernel if the
test process dies (PR_SET_PDEATHSIG); a job step still running then is orphaned (`stop()` kills those by pid,
a SIGKILLed test run cannot).
"""
from __future__ import annotations

import atexit
import ctypes
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DAEMONS = ("munged", "mariadbd", "slurmdbd", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "srun", "squeue", "sacct", "sacctmgr", "scancel", "scontrol", "sinfo", "munge")
FINAL_STATES = {"COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED",
                "BOOT_FAIL", "DEADLINE", "REVOKED"}


class SlurmClusterError(RuntimeError):
    "The cluster could not start or a command failed; the message carries the relevant daemon logs."


def _free_ports(n: int) -> list[int]:
    "n distinct ports free on 127.0.0.1 right now (held open together so they differ)."
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks: s.close()


def _die_with_parent():
    "In a daemon before exec: Linux sends it SIGTERM when the test process dies, even by SIGKILL (no orphans)."
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _tail(path: Path, n: int = 40) -> str:
    if not path.exists(): return f"  ({path.name}: no such file)"
    lines = path.read_text(errors="replace").splitlines()[-n:]
    return "\n".join(f"  {l}" for l in lines) or f"  ({path.name}: empty)"


def node_resources() -> dict[str, str]:
    "The node line of `slurmd -C` (CPUs, Boards, SocketsPerBoard, CoresPerSocket, ThreadsPerCore, RealMemory)."
    out = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise SlurmClusterError(f"`slurmd -C` failed (exit {out.returncode}):\n{out.stderr}")
    fields = dict(kv.split("=", 1) for kv in out.stdout.split("\n")[0].split() if "=" in kv)
    keep = ("CPUs", "Boards", "SocketsPerBoard", "CoresPerSocket", "ThreadsPerCore", "RealMemory")
    missing = [k for k in keep if k not in fields]
    if missing: raise SlurmClusterError(f"`slurmd -C` did not report {missing}:\n{out.stdout}")
    return {k: fields[k] for k in keep}


class SlurmCluster:
    """A one-node Slurm cluster with accounting, on localhost (see the module's docstring).

    Attributes the tests use:
    - `partition`: the partition to submit to (`"debug"`, also the default one);
    - `node`: the node's name (`hostname -s`); `cpus`: its CPU count (how many 1-CPU tasks run at once);
    - `conf`: the path of `slurm.conf`; `env`: a full environment for subprocesses, e.g.
      `subprocess.run([...], env=c.env)`: a copy of `os.environ` without any `SLURM_*` variable of the caller,
      plus `SLURM_CONF`, and `PATH` with this Python's bin folder (the venv: `mtslvr`, `python`) first and
      /usr/sbin last; jobs inherit it from sbatch. The `slurm` fixture puts `SLURM_CONF` and `PATH` into
      `os.environ` for one test, which in-process clients such as submitit need;
    - `kill_wait`: seconds from SIGTERM to SIGKILL (default 5); `extra_conf`: lines appended to `slurm.conf`
      (e.g. preemption settings: `PreemptType=preempt/partition_prio` with partitions of your own);
    - `startup_s`: seconds each start-up step took (`total`: to an idle node);
    - `root`: the temporary folder (removed by `stop()`); `log_dir`: the daemons' logs; `jobs_dir`: a folder for
      job output (`sbatch --output`, submitit's folder) that every job can write to.

    Methods: `run(*cmd)` runs a Slurm client command in the cluster's environment and returns its stdout
    (raising `SlurmClusterError` with the command's stderr and the daemon logs when it fails);
    `sbatch(*args)` returns the job id; `sacct(job_id)` maps each job / array task id (`"12"`, `"12_0"`) to
    its state; `wait(job_id, n=..)` waits until sacct reports `n` ids of the job in final states and returns
    that map; `wait_for(predicate)` polls; `logs()` gives the tails of all daemon logs.
    """

    partition = "debug"

    def __init__(self, root: Path | None = None, cluster_name: str = "mtslvr", kill_wait: int = 5,
                 extra_conf: str = ""):
        self.cluster_name = cluster_name
        self.extra_conf = extra_conf
        self.user = pwd.getpwuid(os.getuid()).pw_name
        self.kill_wait = kill_wait
        self.root = Path(root) if root else Path(tempfile.mkdtemp(prefix="mtslvr-slurm-"))
        self.log_dir = self.root / "log"
        self.jobs_dir = self.root / "jobs"
        self.conf = self.root / "etc" / "slurm.conf"
        self.node = socket.gethostname().split(".")[0]
        self.cpus = 0
        self.procs: dict[str, subprocess.Popen] = {}
        self.startup_s: dict[str, float] = {}
        self.env: dict[str, str] = {}

    # -- commands -------------------------------------------------------------------------------------------
    def run(self, *cmd: str, check: bool = True, timeout: float = 60, cwd: Path | None = None) -> str:
        """Run a client command (e.g. `run('squeue', '-h')`) with this cluster's environment; its stdout.
        It runs in `cwd` (default `jobs_dir`, so that `sbatch` without `--output` writes slurm-%j.out there)."""
        try:
            p = subprocess.run(list(cmd), env=self.env, capture_output=True, text=True, timeout=timeout,
                               cwd=cwd or self.jobs_dir)
        except subprocess.TimeoutExpired as e:
            raise SlurmClusterError(f"`{' '.join(cmd)}` took longer than {timeout} s\n{self.logs()}") from e
        if check and p.returncode != 0:
            raise SlurmClusterError(f"`{' '.join(cmd)}` failed (exit {p.returncode}):\n{p.stdout}{p.stderr}\n"
                                    f"{self.logs()}")
        return p.stdout

    def sbatch(self, *args: str) -> str:
        "Submit with `sbatch --parsable ARGS`; the job id (for an array, the array's job id)."
        return self.run("sbatch", "--parsable", *args).strip().split(";")[0]

    def sacct(self, job_id: str) -> dict[str, str]:
        "State of the job and each of its array tasks, from the accounting database: {'12_0': 'COMPLETED', ...}."
        out = self.run("sacct", "-X", "-n", "-P", "-o", "JobID,State", "-j", str(job_id))
        states = {}
        for line in out.splitlines():
            if "|" not in line: continue
            jid, state = line.split("|", 1)
            states[jid] = state.split()[0]  # "CANCELLED by 0" -> "CANCELLED"
        return states

    def wait_for(self, predicate, timeout: float = 60, interval: float = 0.25, what: str = "condition"):
        "Poll `predicate()` until it returns something truthy (returned); SlurmClusterError after `timeout` s."
        deadline = time.monotonic() + timeout
        while True:
            got = predicate()
            if got: return got
            if time.monotonic() > deadline:
                raise SlurmClusterError(f"timed out after {timeout} s waiting for {what}\n"
                                        f"squeue:\n{self.run('squeue', check=False)}\n{self.logs()}")
            time.sleep(interval)

    def wait(self, job_id: str, n: int = 1, timeout: float = 90) -> dict[str, str]:
        """Wait until sacct reports `n` entries of the job (1 for a plain job, the task count for an array) all
        in final states; returns {id: state}."""
        def done():
            st = self.sacct(job_id)
            ids = {k: v for k, v in st.items() if not k.endswith("]")}  # "12_[3-5]": tasks not started yet
            if len(ids) >= n and len(ids) == len(st) and all(v in FINAL_STATES for v in ids.values()):
                return ids
        return self.wait_for(done, timeout=timeout, what=f"job {job_id} to finish in sacct")

    def logs(self, n: int = 40, first: str | None = None) -> str:
        "The last `n` lines of every daemon's log (what a failure message shows), daemon `first`'s logs first."
        files = sorted(self.log_dir.glob("*")) if self.log_dir.exists() else []
        files.sort(key=lambda f: not (first and f.name.startswith(first + ".")))
        parts = [f"--- {f} ---\n{_tail(f, n)}" for f in files]
        return "\n".join(parts)

    # -- start / stop ---------------------------------------------------------------------------------------
    def _check_installed(self):
        missing = [b for b in (*DAEMONS, *CLIENTS) if shutil.which(b, path=self.env["PATH"]) is None]
        if missing:
            raise SlurmClusterError(
                f"the Slurm test cluster needs {missing}, not found on PATH: these come from the Debian packages of "
                "scripts/debian-packages.txt (slurmctld slurmd slurm-client slurmdbd munge mariadb-server), "
                "which `make test` installs when run as root (or: apt-get install them)")

    def _spawn(self, name: str, cmd: list[str]):
        out = open(self.log_dir / f"{name}.out", "wb")
        self.procs[name] = subprocess.Popen(cmd, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True,
                                            preexec_fn=_die_with_parent)
        out.close()

    def _await(self, name: str, ready, timeout: float = 30):
        t0 = time.monotonic()
        while not ready():
            p = self.procs[name]
            if p.poll() is not None:
                raise SlurmClusterError(f"{name} exited with code {p.returncode} while starting; its log and the "
                                        f"others (kept in {self.log_dir}):\n{self.logs(first=name)}")
            if time.monotonic() - t0 > timeout:
                raise SlurmClusterError(f"{name} was not ready after {timeout} s; its log and the others (kept in "
                                        f"{self.log_dir}):\n{self.logs(first=name)}")
            time.sleep(0.05)
        self.startup_s[name] = time.monotonic() - t0

    def _write_config(self, ports: dict[str, int], res: dict[str, str]):
        etc, r = self.conf.parent, self.root
        munge_sock = r / "munge" / "munge.socket"
        # cred_expire: also how long a requeued job waits before it may start again (Slurm's default: 120 s).
        common = f"AuthType=auth/munge\nAuthInfo=socket={munge_sock},cred_expire=10\n"
        node = " ".join(f"{k}={v}" for k, v in res.items())
        self.conf.write_text(f"""# Written by tests/slurm_cluster.py: a one-node test cluster on localhost.
ClusterName={self.cluster_name}
SlurmctldHost={self.node}(127.0.0.1)
SlurmctldPort={ports['slurmctld']}
SlurmdPort={ports['slurmd']}
SlurmUser={self.user}
SlurmdUser={self.user}
{common}CredType=cred/munge
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool
SlurmctldPidFile={r}/run/slurmctld.pid
SlurmdPidFile={r}/run/slurmd.pid
SlurmctldLogFile={self.log_dir}/slurmctld.log
SlurmdLogFile={self.log_dir}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig={etc}/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
# Schedule a submitted batch job at once (Slurm may delay it up to 3 s to batch submissions), and look at
# pending jobs every 2 s (default 60 s), so that a requeued job starts soon after its hold ends.
SchedulerParameters=batch_sched_delay=0,sched_interval=2
MpiDefault=none
SwitchType=switch/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort={ports['slurmdbd']}
# Connections to slurmdbd take their munge socket from here, not from AuthInfo.
AccountingStoragePass={munge_sock}
ReturnToService=2
MailProg=/bin/true
InactiveLimit=0
KillWait={self.kill_wait}
MinJobAge=600
NodeName={self.node} NodeHostname={self.node} NodeAddr=127.0.0.1 {node} State=UNKNOWN
PartitionName={self.partition} Nodes={self.node} Default=YES MaxTime=INFINITE State=UP
""" + (f"# extra_conf (a later line overrides an earlier one)\n{self.extra_conf}\n" if self.extra_conf else ""))
        dbd = etc / "slurmdbd.conf"
        dbd.write_text(f"""# Written by tests/slurm_cluster.py.
{common}DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort={ports['slurmdbd']}
SlurmUser={self.user}
DebugLevel=info
LogFile={self.log_dir}/slurmdbd.log
PidFile={r}/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=root
StorageLoc=slurm_acct_db
""")
        dbd.chmod(0o600)  # slurmdbd refuses a config other users can read (it may hold the DB password)
        (etc / "plugstack.conf").write_text("")  # no SPANK plugins from /etc/slurm

    def start(self, timeout: float = 60) -> "SlurmCluster":
        t_start = time.monotonic()
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
        env["SLURM_CONF"] = str(self.conf)
        # Debian puts the daemons in /usr/sbin, which a non-login PATH may lack; the venv's bin first for jobs.
        path = [str(Path(sys.executable).parent), *env.get("PATH", "/usr/bin:/bin").split(os.pathsep)]
        path += [p for p in ("/usr/sbin", "/sbin") if p not in path]
        env["PATH"] = os.pathsep.join(path)
        # slurmdbd reaches our mariadbd through its socket (the client library reads MYSQL_UNIX_PORT).
        env["MYSQL_UNIX_PORT"] = str(self.root / "mysql" / "mysqld.sock")
        self.env = env
        self._check_installed()
        atexit.register(self.stop)  # a script that never reaches stop() (an exception) still cleans up
        for d in ("etc", "log", "munge", "munge-key", "mysql", "state", "spool", "run", "jobs"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        # Jobs and sockets must be reachable by whoever submits; the munge key stays private.
        for d in (self.root, self.root / "munge", self.root / "log"): d.chmod(0o755)
        self.jobs_dir.chmod(0o1777)
        (self.root / "munge-key").chmod(0o700)
        t = time.monotonic()
        res = node_resources()
        self.startup_s["slurmd -C"] = time.monotonic() - t
        self.cpus = int(res["CPUs"])
        ports = dict(zip(("slurmctld", "slurmd", "slurmdbd"), _free_ports(3)))
        self._write_config(ports, res)
        try:
            # munged: a fresh key, its own socket.
            key = self.root / "munge-key" / "munge.key"
            key.write_bytes(secrets.token_bytes(1024))
            key.chmod(0o400)
            sock = self.root / "munge" / "munge.socket"
            self._spawn("munged", ["munged", "-F", "--force", f"--key-file={key}", f"--socket={sock}",
                                   f"--pid-file={self.root}/run/munged.pid", f"--log-file={self.log_dir}/munged.log",
                                   f"--seed-file={self.root}/munge/munged.seed"])
            self._await("munged", sock.exists)
            # mariadbd: an empty data folder needs no mariadb-install-db when grant tables are skipped (only
            # root on this machine can reach the socket); durability settings off, it is a throwaway database.
            my = self.root / "mysql"
            (my / "data").mkdir(exist_ok=True)
            self._spawn("mariadbd", [
                "mariadbd", "--no-defaults", f"--datadir={my}/data", f"--socket={my}/mysqld.sock", "--skip-networking",
                f"--user={self.user}", f"--pid-file={my}/mysqld.pid", f"--log-error={self.log_dir}/mariadbd.log",
                "--skip-grant-tables", "--skip-log-bin", "--innodb-buffer-pool-size=64M", "--innodb-log-file-size=16M",
                "--innodb-flush-log-at-trx-commit=0", "--innodb-doublewrite=0", "--innodb-lock-wait-timeout=900",
                "--max-allowed-packet=64M"])
            self._await("mariadbd", (my / "mysqld.sock").exists)
            self._spawn("slurmdbd", ["slurmdbd", "-D"])
            self._await("slurmdbd", lambda: _port_open(ports["slurmdbd"]), timeout=timeout)
            t = time.monotonic()
            self.run("sacctmgr", "-i", "add", "cluster", self.cluster_name)
            self.startup_s["sacctmgr add cluster"] = time.monotonic() - t
            self._spawn("slurmctld", ["slurmctld", "-D", "-i"])
            self._await("slurmctld", lambda: _port_open(ports["slurmctld"]), timeout=timeout)
            self._spawn("slurmd", ["slurmd", "-D"])
            self._await("slurmd", lambda: self.run("sinfo", "-h", "-n", self.node, "-o", "%t", check=False).strip()
                        == "idle", timeout=timeout)
        except BaseException:
            self.stop(remove=False)
            raise
        self.startup_s["total"] = time.monotonic() - t_start
        return self

    def _job_processes(self) -> list[int]:
        "Processes of this cluster that are not its daemons (job steps), found by SLURM_CONF in their environment."
        mine, own = f"SLURM_CONF={self.conf}".encode(), {p.pid for p in self.procs.values()} | {os.getpid()}
        pids = []
        for d in Path("/proc").iterdir():
            if not d.name.isdigit() or int(d.name) in own: continue
            try:
                if mine in (d / "environ").read_bytes().split(b"\0"): pids.append(int(d.name))
            except OSError:
                pass
        return pids

    def stop(self, remove: bool = True):
        "Cancel remaining jobs, stop the daemons (newest first) and any job step left, remove the folder."
        atexit.unregister(self.stop)
        if "slurmctld" in self.procs and self.procs["slurmctld"].poll() is None:
            self.run("scancel", "--full", "--quiet", "--user", str(os.getuid()), check=False, timeout=10)
        for name in reversed(list(self.procs)):
            p = self.procs[name]
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try: p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill(); p.wait(timeout=10)
        for pid in self._job_processes():
            try: os.kill(pid, signal.SIGKILL)
            except ProcessLookupError: pass
        if remove: shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self): return self.start()
    def __exit__(self, *exc): self.stop()


if __name__ == "__main__":  # python tests/slurm_cluster.py: start, print the timings, submit one job, stop.
    with SlurmCluster() as c:
        print({k: round(v, 2) for k, v in c.startup_s.items()})
        jid = c.sbatch("--wrap", "hostname", "-o", f"{c.jobs_dir}/%j.out")
        print(c.wait(jid))
