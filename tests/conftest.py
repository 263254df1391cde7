import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
torch.set_num_threads(int(os.environ.get("MTSLVR_TORCH_THREADS", "1")))


@pytest.fixture
def root() -> Path:
    return ROOT
