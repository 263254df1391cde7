"""Few-shot evaluation speed: the batched per-task solver against scikit-learn's per-task loop, and batched
feature extraction against one clip at a time, in one run on the same inputs.

The encoder is real and local: a small `mt_parallel` (width 16, depths (1, 1, 1, 1), 1000-d features =
500 contrastive + 500 predictive) pre-trained with `mtslvr.pretrain` for `--steps` steps on the bundled
pre-training pool (nothing is downloaded; the run is kept in `--out` and reused). `--encoder FILE` uses a
saved `AudioEncoder` instead.

(a) Few-shot: `--tasks` 5-way 1-shot tasks on the 1000-d features of every clip of every bundled set (all
    classes: this compares classifiers, not encoders), split evenly over the sets. Both sides solve the
    *same* tasks (one sampler seed, the same support pieces, the same query pieces and majority vote):
    scikit-learn `SGDClassifier(loss="log_loss", max_iter=20, learning_rate="adaptive", eta0=0.1, alpha=0,
    tol=1e-4, n_iter_no_change=2)` fitted per task in a Python loop (the authors' classifier), against
    `mtslvr.fewshot.fit_sgd` (the same algorithm, batched over tasks). Timed end to end: tasks drawn,
    classifiers fitted, query pieces scored and voted. Prints time, tasks/s, accuracy +- 95% CI of each,
    the paired difference (batched - sklearn) +- CI, and the speed ratio; then the two fits alone on the
    same supports (no task drawing, gathering of query pieces or voting).
(b) Feature extraction: every clip of the bundled sets (variable length, cut into each set's pieces),
    `extract_features` with `--batch` pieces per forward pass against one clip per forward pass, both read
    from the files (what a user runs) and from clips already in memory (the encoder part alone).

Asserts nothing. Run (from the repository root, with the project's environment):
`python benchmarks/fewshot.py [--tasks 10000] [--device cuda] [--threads 0]`.
"""
import argparse
import dataclasses
import math
import platform
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent


def trained_encoder(out: Path, steps: int, device: str):
    "A small encoder pre-trained on the bundled pool (reused when `out` holds the same finished run)."
    from mtslvr.demo import train_or_reuse
    from mtslvr.pretrain import PretrainConfig
    c = PretrainConfig(variant="mt_parallel", width=16, depths=(1, 1, 1, 1), out_dim=1000, batch_size=16, steps=steps,
                       lr=1e-3, clip_seconds=1.0, val_every=0, checkpoint_every=steps, log_every=max(1, steps // 5),
                       out_dir=str(out), seed=0, device=device)
    t0 = time.perf_counter()
    path, how = train_or_reuse(c, progress=False)
    return path, f"mt_parallel width 16, 1000-d, pre-trained {steps} steps (batch 16, 1 s clips, SimCLR + MLAP) on the " \
                 f"bundled pool; {how} in {time.perf_counter() - t0:.0f} s"


class InMemory:
    "An `AudioFolder` whose clips are already decoded: `extract_features` then times the encoder, not the disk."
    def __init__(self, folder):
        self.root, self.files, self.labels, self.classes = folder.root, folder.files, folder.labels, folder.classes
        self.sample_rate, self.clips = folder.sample_rate, [folder.load(i) for i in range(len(folder))]

    def __len__(self): return len(self.clips)

    def load(self, i): return self.clips[i]


def best_time(fn, repeats: int, clock=time.perf_counter) -> float:
    best = math.inf
    for _ in range(repeats):
        t0 = clock(); fn(); best = min(best, clock() - t0)
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=10_000, help="5-way 1-shot tasks in all (default 10,000)")
    ap.add_argument("--steps", type=int, default=60, help="pre-training steps of the encoder (default 60)")
    ap.add_argument("--encoder", default=None, help="a saved AudioEncoder file to use instead of training one")
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench-fewshot"), help="folder for the encoder's run")
    ap.add_argument("--batch", type=int, default=256, help="pieces per forward pass, batched extraction (default 256)")
    ap.add_argument("--repeats", type=int, default=3, help="feature extraction: best of this many runs")
    ap.add_argument("--device", default="cpu", help="cpu or cuda: the encoder and the batched solver (sklearn: CPU)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    ap.add_argument("--clock", choices=("cpu", "wall"), default=None,
                    help="cpu: the process's CPU time (default on a CPU: on a shared machine it counts the work, not "
                         "the waiting; run with one thread); wall: wall clock (always on CUDA)")
    a = ap.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    use_cpu_clock = dev.type != "cuda" and a.clock != "wall"
    clock = time.process_time if use_cpu_clock else time.perf_counter
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

    from mtslvr.audio import find_data_root
    from mtslvr.data import AudioFolder, bundled_sets
    from mtslvr.features import extract_features
    from mtslvr.fewshot import evaluate_features
    from mtslvr.results import mean_ci95
    from mtslvr.models import AudioEncoder

    if a.encoder: path, what = Path(a.encoder), f"the saved encoder {a.encoder}"
    else: path, what = trained_encoder(Path(a.out) / "encoder", a.steps, "auto")
    model = AudioEncoder.load(path).eval().to(dev)
    print(f"few-shot benchmark: device {dev}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{platform.processor() or platform.machine()}; {'CPU time' if use_cpu_clock else 'wall clock'}; encoder: {what}")

    root = find_data_root()
    sets = {n: (AudioFolder(root / n / "audio", sample_rate=sp.sample_rate, classes=sp.train + sp.val + sp.test),
                sp.piece_seconds) for n, sp in bundled_sets(root).items()}

    # ---- (b) feature extraction --------------------------------------------------------------------
    feats, rows = {}, []
    for source in ("files", "memory"):
        folders = {n: (f if source == "files" else InMemory(f), p) for n, (f, p) in sets.items()}

        def extract(batch_size):
            for n, (f, p) in folders.items():
                feats[n] = extract_features(model, f, p, batch_size=batch_size, device=dev)
            sync()
        extract(a.batch)  # warm-up (and the features for part (a))
        t_batched = best_time(lambda: extract(a.batch), a.repeats, clock)
        t_one = best_time(lambda: extract(1), a.repeats, clock)  # batch_size=1: every clip is its own forward pass
        rows.append((source, t_one, t_batched))
    n_clips = sum(len(f.labels) for f in feats.values())
    pieces = torch.cat([f.n_pieces for f in feats.values()])
    print(f"\n(b) feature extraction: {n_clips} clips of {len(sets)} bundled sets, {int(pieces.sum())} pieces of 1 s "
          f"({int(pieces.min())}-{int(pieces.max())} per clip, mean {pieces.float().mean():.1f}); best of {a.repeats}")
    print(f"{'clips read from':<16}{'one clip at a time':>22}{f'batched ({a.batch} pieces)':>26}{'speed-up':>10}")
    for source, t_one, t_batched in rows:
        print(f"{source:<16}{t_one:>8.2f} s {n_clips / t_one:>7.0f} clips/s{t_batched:>10.2f} s {n_clips / t_batched:>7.0f} clips/s"
              f"{t_one / t_batched:>9.1f}x")

    # ---- (a) few-shot: sklearn loop against the batched solver, the same tasks ----------------------
    per_set = [a.tasks // len(feats) + (i < a.tasks % len(feats)) for i in range(len(feats))]
    res = {}
    for clf in ("sklearn", "sgd"):
        accs, t = [], 0.0
        for (n, f), k in zip(feats.items(), per_set):
            f = dataclasses.replace(f, pieces=f.pieces.to(dev if clf == "sgd" else "cpu"))
            t0 = clock()
            accs.append(evaluate_features(f, 5, 1, 1, k, clf, seed=0).cpu()); sync()
            t += clock() - t0
        res[clf] = (torch.cat(accs), t)
    print(f"\n(a) {a.tasks} 5-way 1-shot tasks on {feats[next(iter(feats))].pieces.shape[1]}-d features "
          f"({', '.join(f'{k} on {n}' for n, k in zip(feats, per_set))}); the same tasks for both")
    print(f"{'classifier':<44}{'time':>9}{'tasks/s':>10}{'accuracy % (95% CI)':>22}")
    names = {"sklearn": "scikit-learn SGDClassifier, one task at a time", "sgd": f"mtslvr fit_sgd, batched ({dev.type})"}
    for clf, (acc, t) in res.items():
        m, ci = mean_ci95(acc)
        print(f"{names[clf]:<44}{t:>8.2f}s{len(acc) / t:>10.0f}{100 * m:>14.2f} +- {100 * ci:.2f}")
    d, dci = mean_ci95(100 * (res["sgd"][0] - res["sklearn"][0]))
    same = (res["sgd"][0] == res["sklearn"][0]).double().mean().item()
    print(f"paired difference (batched - sklearn): {d:+.2f} +- {dci:.2f} points (CI [{d - dci:+.2f}, {d + dci:+.2f}]); "
          f"{100 * same:.1f}% of tasks scored identically")
    print(f"speed-up, end to end (tasks drawn, fitted, queries scored and voted): {res['sklearn'][1] / res['sgd'][1]:.0f}x")
    # float32 against float64 features: the same tasks, the batched solver (scores are float64 either way)
    acc64 = torch.cat([evaluate_features(dataclasses.replace(f, pieces=f.pieces.double().to(dev)), 5, 1, 1, k, "sgd", seed=0).cpu()
                       for (n, f), k in zip(feats.items(), per_set)])
    agree = (acc64 == res["sgd"][0]).double().mean().item()
    print(f"float32 vs float64 features (batched): {100 * res['sgd'][0].mean():.2f}% vs {100 * acc64.mean():.2f}%; "
          f"{100 * agree:.2f}% of tasks scored identically")

    # ---- (a') the classifiers alone: fitting the same supports, nothing else timed --------------------
    from mtslvr.tasks import FewShotSampler
    from mtslvr.fewshot import fit_sgd, fit_sklearn, tasks_from_features
    from mtslvr.seed import seeded_generator
    supports = [tasks_from_features(f, FewShotSampler(f.labels, 5, 1, 1, k, seed=0).tasks(0, k),
                                    seeded_generator(0, "support-pieces", 0)) for f, k in zip(feats.values(), per_set)]
    fit_time = {}
    for clf in ("sklearn", "sgd"):
        t0 = clock()
        for s in supports:
            x, y = s.support.to(dev if clf == "sgd" else "cpu"), s.support_labels.to(dev if clf == "sgd" else "cpu")
            for c0 in range(0, len(x), 2000):  # the chunks evaluate_tasks uses
                if clf == "sgd": fit_sgd(x[c0:c0 + 2000], y[c0:c0 + 2000], 5, generator=torch.Generator().manual_seed(c0))
                else: fit_sklearn(x[c0:c0 + 2000], y[c0:c0 + 2000], 5, seed=c0)
        sync(); fit_time[clf] = clock() - t0
    print(f"fitting alone ({a.tasks} supports of 5 x 1000-d): scikit-learn {fit_time['sklearn']:.2f} s "
          f"({a.tasks / fit_time['sklearn']:.0f} tasks/s), fit_sgd {fit_time['sgd']:.2f} s ({a.tasks / fit_time['sgd']:.0f} tasks/s): "
          f"{fit_time['sklearn'] / fit_time['sgd']:.0f}x")


if __name__ == "__main__":
    main()
