import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
# nbdev's docs processors import `scripts.docs_site` (pyproject doc_procs): the project root is on the path
if str(ROOT) not in sys.path: sys.path.insert(0, str(ROOT))
torch.set_num_threads(int(os.environ.get("MTSLVR_TORCH_THREADS", "1")))


@pytest.fixture
def root() -> Path:
    return ROOT
