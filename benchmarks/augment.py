"""Augmentation throughput: mtslvr's batched two-view pipeline against the peers, in one run.

Same inputs for everyone: B clips of 5 s at 16 kHz (bundled real audio, tiled to 5 s), two views per
clip, k ~ U{1..7} distinct augmentations in random order with the paper's ranges.

  (a) the authors' approach: a per-example Python loop over torch-audiomentations (PitchShift,
      AddColoredNoise for white and mixed noise, Shift) and torchaudio-style Fade, time masking and an
      STFT phase-vocoder time stretch;
  (b) audiomentations per example (numpy/librosa);
  floor: one torch.stft + torch.istft round trip of the same batch (n_fft 1024, hop 256).

Prints views/s and the ratios; asserts nothing. Run: `bash benchmarks/setup_peers.sh` once, then
`benchmarks/.venv-peers/bin/python benchmarks/augment.py [--batch 32] [--device cuda]`.
"""
import argparse
import math
import platform
import random
import time
import warnings

import numpy as np
import torch

warnings.filterwarnings("ignore")
SR, SECONDS = 16000, 5.0
T = int(SR * SECONDS)


def real_clips(n: int, seed: int = 0) -> torch.Tensor:
    "n clips of 5 s from the bundled data (tiled when shorter), z-normalised, [n, T]."
    from pathlib import Path
    from mtslvr.audio import fix_length, load_audio, z_normalise
    files = sorted(Path(__file__).resolve().parent.parent.glob("data/*/audio/*/*.flac"))
    if not files:
        raise SystemExit("no bundled data under data/: this benchmark runs on the bundled real clips")
    rng = random.Random(seed)
    pick = [files[rng.randrange(len(files))] for _ in range(n)]
    return torch.stack([fix_length(z_normalise(load_audio(f, SR)), T) for f in pick]) * 0.1


def time_it(fn, repeats: int) -> float:
    "Best wall time of `repeats` runs after one warm-up."
    fn()
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter(); fn(); best = min(best, time.perf_counter() - t0)
    return best


# ---- (a) the authors' approach: per example, per view, Python loop over transforms -------------
def authors_transforms():
    import torchaudio
    import torch_audiomentations as ta
    ps = ta.PitchShift(-15, 15, p=1.0, sample_rate=SR, output_type="tensor")
    wn = ta.AddColoredNoise(3, 30, min_f_decay=-1, max_f_decay=0, p=1.0, sample_rate=SR, output_type="tensor")
    mn = ta.AddColoredNoise(3, 30, min_f_decay=-2, max_f_decay=2, p=1.0, sample_rate=SR, output_type="tensor")
    sh = ta.Shift(-0.5, 0.5, rollover=True, p=1.0, sample_rate=SR, output_type="tensor")
    n_fft, hop = 1024, 256
    window = torch.hann_window(n_fft)
    stretch = torchaudio.transforms.TimeStretch(hop_length=hop, n_freq=n_fft // 2 + 1)

    def fade(x):
        fi, fo = int(random.uniform(0, 0.5) * T), int(random.uniform(0, 0.5) * T)
        shape = random.choice(["linear", "logarithmic", "exponential"])
        return torchaudio.transforms.Fade(fi, fo, shape)(x)

    def mask(x):
        w = int(random.uniform(0, 0.125) * T); s = random.randrange(0, T - w + 1)
        x = x.clone(); x[..., s:s + w] = 0
        return x

    def tstretch(x):
        spec = torch.stft(x.reshape(1, -1), n_fft, hop, window=window, return_complex=True)
        y = torch.istft(stretch(spec, random.uniform(0.5, 1.5)), n_fft, hop, window=window)
        y = y[..., :T]
        return torch.nn.functional.pad(y, (0, T - y.shape[-1])).reshape(x.shape)

    return [lambda x: ps(x), fade, lambda x: wn(x), lambda x: mn(x), mask, lambda x: sh(x), tstretch]


def authors_views(x: torch.Tensor, tfs) -> list:
    out = []
    for clip in x:
        k = random.randint(1, 7)
        order = random.sample(range(7), k)
        for _view in range(2):
            y = clip.reshape(1, 1, -1)
            for i in order:
                y = tfs[i](y)
            out.append(y.reshape(-1))
    return out


# ---- (b) audiomentations per example ------------------------------------------------------------
def audiomentations_transforms():
    import audiomentations as A

    def fade(samples, sample_rate):
        n = samples.shape[-1]
        fi, fo = int(random.uniform(0, 0.5) * n), int(random.uniform(0, 0.5) * n)
        env = np.ones(n, np.float32)
        env[:fi] = np.linspace(0, 1, fi, dtype=np.float32); env[n - fo:] = np.linspace(1, 0, fo, dtype=np.float32)
        return samples * env

    return [A.PitchShift(-15, 15, p=1.0), A.Lambda(fade, p=1.0),
            A.AddColorNoise(3, 30, min_f_decay=-1, max_f_decay=0, p=1.0),
            A.AddColorNoise(3, 30, min_f_decay=-2, max_f_decay=2, p=1.0),
            A.TimeMask(0.0, 0.125, p=1.0), A.Shift(-0.5, 0.5, rollover=True, p=1.0),
            A.TimeStretch(0.5, 1.5, leave_length_unchanged=True, p=1.0)]


def audiomentations_views(x: np.ndarray, tfs) -> list:
    out = []
    for clip in x:
        k = random.randint(1, 7)
        order = random.sample(range(7), k)
        for _view in range(2):
            y = clip
            for i in order:
                y = tfs[i](samples=y, sample_rate=SR)
            out.append(y)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=32, help="clips per batch (views = 2 x batch)")
    ap.add_argument("--peer-batch", type=int, default=8, help="clips timed for the slower peers")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    ap.add_argument("--skip-peers", action="store_true")
    a = ap.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    random.seed(0); torch.manual_seed(0); np.random.seed(0)
    dev = torch.device(a.device)
    x = real_clips(a.batch).to(dev)
    print(f"augmentation benchmark: {a.batch} clips x 5 s @ 16 kHz, two views, k ~ U{{1..7}}; device {dev}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}")

    def sync():
        if dev.type == "cuda": torch.cuda.synchronize()

    from mtslvr.pipeline import sample_pipeline
    gen = torch.Generator().manual_seed(0)

    def ours():
        v1, v2 = sample_pipeline(a.batch, generator=gen, device=dev).apply(x); sync()

    n_fft, hop, win = 1024, 256, torch.hann_window(1024, device=dev)

    def floor():
        s = torch.stft(x, n_fft, hop, window=win, return_complex=True)
        torch.istft(s, n_fft, hop, window=win, length=T); sync()

    rows = [("mtslvr pipeline (batched)", 2 * a.batch / time_it(ours, a.repeats))]
    rows.append(("floor: one stft+istft round trip", a.batch / time_it(floor, a.repeats)))
    if not a.skip_peers:
        xp = x[:a.peer_batch].cpu()
        tfs = authors_transforms()
        rows.append(("(a) authors' per-example loop", 2 * a.peer_batch / time_it(lambda: authors_views(xp, tfs), 1)))
        xn, atfs = xp.numpy(), audiomentations_transforms()
        rows.append(("(b) audiomentations per example", 2 * a.peer_batch / time_it(lambda: audiomentations_views(xn, atfs), 1)))
    ours_rate = rows[0][1]
    print(f"{'method':<36}{'views/s':>10}{'mtslvr x':>10}")
    for name, r in rows:
        print(f"{name:<36}{r:>10.1f}{ours_rate / r:>10.2f}")
    print("('floor' counts clips per second through one STFT round trip; 'mtslvr x' = mtslvr views/s / row's rate)")


if __name__ == "__main__":
    main()
