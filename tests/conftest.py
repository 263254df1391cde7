import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")   # before torch loads OpenMP (see scripts/run_tests.sh)
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
# nbdev's docs processors import `scripts.docs_site` (pyproject doc_procs): the project root is on the path
if str(ROOT) not in sys.path: sys.path.insert(0, str(ROOT))
torch.set_num_threads(int(os.environ.get("MTSLVR_TORCH_THREADS", "1")))


@pytest.fixture
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def slurm_cluster():
    """A real one-node Slurm cluster with accounting (tests/slurm_cluster.py: `SlurmCluster`), started on first
    use (a few seconds) and stopped at the end of the session. It leaves `os.environ` alone: pass
    `slurm_cluster.env` to subprocesses, or use the `slurm` fixture. A daemon that cannot start fails the test
    with its log; it is never skipped."""
    from slurm_cluster import SlurmCluster, SlurmClusterError
    cluster = SlurmCluster()
    try:
        cluster.start()
    except SlurmClusterError as e:
        pytest.fail(f"the Slurm test cluster did not start: {e}", pytrace=False)
    yield cluster
    cluster.stop()


@pytest.fixture
def slurm(slurm_cluster, monkeypatch):
    """`slurm_cluster`, with its environment in `os.environ` for this test only (SLURM_CONF, PATH, and no
    SLURM_* variable of the caller), for in-process clients such as submitit, which run sbatch/sacct with the
    current environment."""
    for k in [k for k in os.environ if k.startswith("SLURM_")]: monkeypatch.delenv(k)
    for k in ("SLURM_CONF", "PATH"): monkeypatch.setenv(k, slurm_cluster.env[k])
    return slurm_cluster
