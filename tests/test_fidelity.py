"""The fidelity page is true of the code, and the paper profile's dry run is the authors' training run."""
import json
import subprocess
import sys
from pathlib import Path

from mtslvr.fidelity import FIDELITY, check_fidelity

EXE = Path(sys.executable).parent / "mtslvr"

# the authors' MT-SLVR run, as their code and README give it (shared/fixtures/authors/training_schedule.json, heads.json)
AUTHORS_RUN = dict(batch_size=100, weight_decay=1e-6, schedule="cosine_periodic", cosine_period=1000, val_every=50,
                   val_batches=0, val_loss="sum", early_stop=50, early_stop_delta=1e-3, steps=50 * 1000, seed=42,
                   waveform_norm="global", lam=1.0, temperature=0.07, mlap_mode="per_view", mlap_reduction="mean",
                   amp=False, clip_seconds=10.0, heads="authors", encoder_layout="authors", frontend="authors",
                   width=64, depths=[2, 2, 2, 2], out_dim=1000, stretch_pad="circular", sampling="uniform")


def test_every_row_of_the_fidelity_page_is_true_of_the_paper_profiles():
    assert check_fidelity() == []
    assert sum(len(r.checks) for r in FIDELITY) >= 30


def test_the_paper_profiles_dry_run_is_the_authors_run():
    r = subprocess.run([str(EXE), "pretrain", "--profile", "paper", "--set", "variant=mt_parallel", "--dry-run"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    cfg = json.loads(r.stdout)
    assert {k: cfg[k] for k in AUTHORS_RUN} == AUTHORS_RUN
    from mtslvr.pretrain import PretrainConfig, learning_rate
    assert learning_rate(PretrainConfig.from_dict(cfg)) == 5e-5        # their README's rate for MT-SLVR
    assert learning_rate(PretrainConfig.from_dict({**cfg, "variant": "cont_only"})) == 1e-4   # the paper's for baselines
