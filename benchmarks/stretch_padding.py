"""Does MLAP use the silent tail that a zero-padded time stretch leaves? Train the same small `pred_only` encoder twice
on the bundled pool, once with the time stretch zero-padded (mtslvr's default) and once circularly padded (the
authors'), and report each augmentation's MLAP accuracy on held-out clips with fixed augmentations. If the zero pad is
a cue, time stretch is detected more easily with it; the cue is gone when the stretched clip is repeated instead.

    .venv/bin/python benchmarks/stretch_padding.py [--steps 300] [--threads 2]

The same command, versions, seed and thread count print the same numbers."""
import argparse
import time

import torch

from mtslvr.augment import AUGMENTATIONS
from mtslvr.pipeline import default_augmentations, sample_pipeline
from mtslvr.pretrain import PretrainConfig, StepBatches, build_model, build_objective, open_pool, split_validation, step_generator
from mtslvr.seed import seed_everything


@torch.no_grad()
def per_augmentation_accuracy(objective, batches, augs, c, n_batches):
    "MLAP accuracy of each augmentation (threshold 0) on `n_batches` fixed validation batches."
    objective.eval()
    hits, n = torch.zeros(len(augs)), 0
    for i in range(n_batches):
        x = batches.batch(i)
        pipe = sample_pipeline(x.shape[0], generator=step_generator(c.seed, i, "val-augment"), augmentations=augs)
        v1, v2 = pipe.apply(x)
        f = objective.encoder(torch.cat([v1, v2]), ("predictive",))["predictive"]
        logits = objective.mlap_head(f)
        y = pipe.labels.repeat(2, 1)
        hits += ((logits > 0) == (y > 0.5)).float().sum(0)
        n += len(y)
    objective.train()
    return hits / n


def train(pad: str, steps: int, seed: int):
    c = PretrainConfig(variant="pred_only", width=8, depths=(1, 1, 1, 1), out_dim=64, batch_size=32, lr=1e-3,
                       clip_seconds=1.0, seed=seed, device="cpu")
    seed_everything(c.seed)
    pool = open_pool(c)
    tr, va = split_validation(pool.files, 0.2, c.seed)
    crop = int(c.clip_seconds * c.sample_rate)
    train_b = StepBatches(pool, c.batch_size, crop, c.seed, "crop", indices=tr)
    val_b = StepBatches(pool, c.batch_size, crop, c.seed, "val", indices=va)
    model = build_model(c)
    model.frontend.fit_stats(train_b.batch(i) for i in range(4))
    objective = build_objective(c, model)
    opt = torch.optim.Adam(objective.parameters(), lr=c.lr, weight_decay=c.weight_decay)
    augs = default_augmentations(c.sample_rate, "cpu", options={"time_stretch": {"pad": pad}})
    for s in range(steps):
        x = train_b.batch(s)
        pipe = sample_pipeline(x.shape[0], generator=step_generator(c.seed, s, "augment"), augmentations=augs)
        v1, v2 = pipe.apply(x)
        loss = objective(v1, v2, pipe.labels)["loss"]
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
    return per_augmentation_accuracy(objective, val_b, augs, c, 8)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=300, help="training steps per run (default 300)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    a = ap.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    acc = {pad: train(pad, a.steps, a.seed) for pad in ("zero", "circular")}
    names = list(AUGMENTATIONS)
    print(f"MLAP accuracy per augmentation on held-out pool clips after {a.steps} steps (pred_only, width 8, seed {a.seed}, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}):")
    print(f"{'augmentation':<14}" + "".join(f"{p:>10}" for p in acc))
    for i, n in enumerate(names):
        print(f"{n:<14}" + "".join(f"{100 * acc[p][i]:>9.1f}%" for p in acc))
    d = 100 * (acc["zero"][names.index("time_stretch")] - acc["circular"][names.index("time_stretch")])
    print(f"time stretch: zero padding {'+' if d >= 0 else ''}{d:.1f} points over circular ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
