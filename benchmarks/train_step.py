"""Pre-training step speed per variant: mtslvr's step against the authors' step structure, in one run.

Both steps are built from the library's own pieces (`mtslvr.pretrain.build_model` / `build_objective`,
`mtslvr.pipeline.sample_pipeline`, the `Spectrogram3C` front-end, `MultiTaskObjective`), share every
parameter and the optimiser, and see the same crops and views; only the structure of the forward pass differs:

  ours:  both views in one batch [2B]; shared layers (stem, layer1, and for the plain trunks all of
         them) computed once; adapter layers run both heads stacked along the batch.
  naive: the authors' structure: one full backbone pass per head per view (four passes for the
         multi-task variants, two for cont_only/pred_only), the front-end once per view.

The optimiser step, the loss code and the heads are the same objects. Before timing, the script
checks in eval mode (BatchNorm on running statistics, where batch composition cannot matter) that the
two structures give the same loss, so the naive step is the same function, computed differently.

Printed per size and variant: ms per step of the augmentation pipeline, of the front-end, of the
model step (front-end + encoder + loss + backward + Adam) in each structure; steps/s of the whole
step (pipeline + model step); the ratio ours/naive (model step and whole step); and the pipeline's
and front-end's share of our whole step. With --device cuda the table is printed with AMP
(bfloat16 autocast, as `pretrain` uses it) off and on, timed with torch.cuda.synchronize.
Expected ratios (arithmetic): about 1.2x for the adapter variants (the backbone from layer2 on has to
run per head in both structures), about 2x for mt_split/mt_simple, about 1x for the single-task ones.
Asserts no timing.

Run (the project's venv is enough; no peers needed), from the repository root:
  PYTHONPATH=$PWD python benchmarks/train_step.py                     # CPU: demo and ResNet-18 size
  PYTHONPATH=$PWD python benchmarks/train_step.py --device cuda      # GPU: larger batches, AMP off/on
"""
import argparse
import platform
import time
from contextlib import nullcontext

import torch
from torch import nn

from mtslvr.models import VARIANTS
from mtslvr.pipeline import default_augmentations, sample_pipeline
from mtslvr.pretrain import (PretrainConfig, StepBatches, build_model, build_objective,
                             learning_rate, open_pool, step_generator)
from mtslvr.seed import seed_everything

# name -> (width, depths, default clips per step on CPU, on CUDA, clip seconds)
SIZES = {"demo": (16, (1, 1, 1, 1), 32, 256, 1.0),
         "resnet18": (64, (2, 2, 2, 2), 4, 100, 5.0)}


class FourPassEncoder(nn.Module):
    "The authors' step structure over an `AudioEncoder`: `[2B, T]` (view1; view2) -> {head: `[2B, d]`}, one full backbone pass per head per view."
    def __init__(self, model):
        super().__init__()
        self.model = model
        self.heads, self.head_dims = model.heads, model.head_dims
        self.variant = model.encoder.variant     # (for MultiTaskObjective's messages)

    def forward(self, wav: torch.Tensor, heads=None) -> dict:
        heads = self.heads if heads is None else heads
        specs = [self.model.frontend(v) for v in wav.chunk(2)]     # the front-end once per view
        return {h: torch.cat([self.model.encoder(s, (h,))[h] for s in specs]) for h in heads}


def naive_objective(c: PretrainConfig, model, objective):
    "A `MultiTaskObjective` over `FourPassEncoder(model)` sharing `objective`'s heads: same parameters, same loss code."
    naive = build_objective(c, FourPassEncoder(model))
    naive.method, naive.mlap_head = objective.method, objective.mlap_head
    return naive


def check_same_function(objective, naive, views, labels):
    "In eval mode the two structures must give the same loss (up to float rounding); else the comparison is void."
    was = objective.training
    objective.eval(); naive.eval()
    with torch.no_grad():
        a, b = objective(*views, labels)["loss"].double(), naive(*views, labels)["loss"].double()
    objective.train(was); naive.train(was)
    if not torch.allclose(a, b, rtol=1e-3, atol=1e-4):
        raise SystemExit(f"the naive step computes a different loss ({float(b):.6g}) from ours ({float(a):.6g})")
    return float(a), float(b)


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def bench_variant(variant: str, size: str, batch: int, steps: int, device: torch.device, amp_on: bool, pool,
                  clock: str = "wall"):
    width, depths, _, _, seconds = SIZES[size]
    c = PretrainConfig(variant=variant, width=width, depths=depths, batch_size=batch, clip_seconds=seconds,
                       device=device.type, amp=amp_on)
    seed_everything(c.seed)
    crop = int(round(c.clip_seconds * c.sample_rate))
    batches = StepBatches(pool, c.batch_size, crop, c.seed, "crop")
    model = build_model(c)
    model.frontend.fit_stats(batches.batch(10_000 + i) for i in range(2))   # normalise as a run does
    objective = build_objective(c, model).to(device).train()
    naive = naive_objective(c, model, objective).to(device).train()
    opt = torch.optim.Adam(objective.parameters(), lr=learning_rate(c), weight_decay=c.weight_decay)
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if (amp_on and device.type == "cuda") else nullcontext()
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    now = CLOCKS[clock]

    def timed(fn):
        sync(); t0 = now(); out = fn(); sync()
        return now() - t0, out

    def model_step(obj, v1, v2, labels):
        with amp: res = obj(v1, v2, labels)
        opt.zero_grad(set_to_none=True)
        res["loss"].backward()
        opt.step()

    def frontend(v1, v2):
        with amp, torch.no_grad(): model.frontend(torch.cat([v1, v2]))

    data = [batches.batch(s).to(device) for s in range(steps + 1)]
    augs = default_augmentations(c.sample_rate, device, c.augmentations)   # built once, as pretrain does
    t = {"pipeline": 0.0, "frontend": 0.0, "ours": 0.0, "naive": 0.0}
    for s, x in enumerate(data):      # step 0 warms up (allocations, kernel choice) and is not counted
        dt, (v1, v2, labels) = timed(lambda: (lambda p: (*p.apply(x), p.labels))(
            sample_pipeline(x.shape[0], generator=step_generator(c.seed, s, "augment"), mode=c.sampling,
                            p=c.bernoulli_p, device=device, augmentations=augs)))
        if s == 0: check_same_function(objective, naive, (v1, v2), labels)
        times = {"pipeline": dt, "frontend": timed(lambda: frontend(v1, v2))[0]}
        # alternate which structure goes first, so a noisy neighbour hurts both alike
        for name in (("ours", "naive") if s % 2 else ("naive", "ours")):
            times[name] = timed(lambda: model_step(objective if name == "ours" else naive, v1, v2, labels))[0]
        if s: t = {k: t[k] + times[k] for k in t}
    t = {k: v / steps for k, v in t.items()}
    n_params = sum(p.numel() for p in objective.parameters())
    return dict(variant=variant, params=n_params, **t)


def print_table(rows, title):
    print(title)
    hdr = (f"{'variant':<12}{'params':>10}{'pipe ms':>9}{'fe ms':>8}{'ours ms':>9}{'naive ms':>10}"
           f"{'ours st/s':>10}{'naive st/s':>11}{'x model':>9}{'x step':>8}{'pipe %':>8}{'fe %':>6}")
    print(hdr)
    for r in rows:
        whole_ours, whole_naive = r["pipeline"] + r["ours"], r["pipeline"] + r["naive"]
        print(f"{r['variant']:<12}{r['params'] / 1e6:>9.2f}M{1e3 * r['pipeline']:>9.1f}{1e3 * r['frontend']:>8.1f}"
              f"{1e3 * r['ours']:>9.1f}{1e3 * r['naive']:>10.1f}{1 / whole_ours:>10.2f}{1 / whole_naive:>11.2f}"
              f"{r['naive'] / r['ours']:>9.2f}{whole_naive / whole_ours:>8.2f}"
              f"{100 * r['pipeline'] / whole_ours:>8.1f}{100 * r['frontend'] / whole_ours:>6.1f}")
    print("(ms per step; 'ours/naive ms' = model step: front-end + encoder + loss + backward + Adam; "
          "'st/s' = whole steps (pipeline + model step) per second; 'x model', 'x step' = naive time / ours; "
          "'pipe %', 'fe %' = share of our whole step spent in the augmentation pipeline and in the front-end)\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="demo,resnet18", help=f"comma-separated, from {', '.join(SIZES)}")
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated variant names")
    ap.add_argument("--batch", type=int, default=0, help="clips per step (0 = the size's default for the device)")
    ap.add_argument("--steps", type=int, default=0, help="timed steps per variant (0 = 3 on CPU, 10 on CUDA), after one warm-up")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    ap.add_argument("--clock", choices=list(CLOCKS), default=None,
                    help="wall or cpu (process CPU time: counts the work, not the waiting, on a shared machine); "
                         "default: cpu on CPU, wall on CUDA")
    a = ap.parse_args()
    device = torch.device(a.device)
    if device.type == "cuda" and not torch.cuda.is_available(): raise SystemExit("--device cuda: no CUDA device here")
    sizes, variants = a.sizes.split(","), a.variants.split(",")
    for n in sizes:
        if n not in SIZES: raise SystemExit(f"--sizes: unknown size {n!r}; choose from {', '.join(SIZES)}")
    for v in variants:
        if v not in VARIANTS: raise SystemExit(f"--variants: unknown variant {v!r}; choose from {', '.join(VARIANTS)}")
    clock = a.clock or ("wall" if device.type == "cuda" else "cpu")
    if clock == "cpu" and device.type == "cuda": raise SystemExit("--clock cpu does not see GPU work: use --clock wall with --device cuda")
    if a.threads: torch.set_num_threads(a.threads)
    steps = a.steps or (10 if device.type == "cuda" else 3)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else (platform.processor() or platform.machine())
    print(f"train-step benchmark: device {device} ({where}), torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{clock} clock, {steps} timed steps after 1 warm-up, simclr, out_dim 1000\n")
    pool = open_pool(PretrainConfig())
    for size in sizes:
        width, depths, b_cpu, b_cuda, seconds = SIZES[size]
        batch = a.batch or (b_cuda if device.type == "cuda" else b_cpu)
        for amp_on in ((False, True) if device.type == "cuda" else (False,)):
            rows = []
            for v in variants:
                rows.append(bench_variant(v, size, batch, steps, device, amp_on, pool, clock))
            print_table(rows, f"{size}: width {width}, depths {depths}, {batch} clips x {seconds:g} s x 2 views"
                              + (f", AMP {'on (bfloat16)' if amp_on else 'off'}" if device.type == "cuda" else ""))


if __name__ == "__main__":
    main()
