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


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def time_it(fn, repeats: int, clock: str = "wall") -> float:
    """Mean time of `repeats` runs after one warm-up, by `clock` ("cpu" is this process's CPU time: on a machine
    shared with other jobs it counts the work, not the waiting)."""
    fn()
    now = CLOCKS[clock]
    t0 = now()
    for _ in range(repeats): fn()
    return (now() - t0) / repeats


# ---- (a) the authors' approach: per example, per view, Python loop over transforms -------------
def authors_transforms(device: torch.device):
    "The seven transforms as the authors applied them: one example `[1, 1, T]` at a time, on `device`."
    import torchaudio
    import torch_audiomentations as ta
    ps = ta.PitchShift(-15, 15, p=1.0, sample_rate=SR, output_type="tensor")
    wn = ta.AddColoredNoise(3, 30, min_f_decay=-1, max_f_decay=0, p=1.0, sample_rate=SR, output_type="tensor")
    mn = ta.AddColoredNoise(3, 30, min_f_decay=-2, max_f_decay=2, p=1.0, sample_rate=SR, output_type="tensor")
    sh = ta.Shift(-0.5, 0.5, rollover=True, p=1.0, sample_rate=SR, output_type="tensor")
    n_fft, hop = 1024, 256
    window = torch.hann_window(n_fft, device=device)
    stretch = torchaudio.transforms.TimeStretch(hop_length=hop, n_freq=n_fft // 2 + 1).to(device)

    def fade(x):
        fi, fo = int(random.uniform(0, 0.5) * T), int(random.uniform(0, 0.5) * T)
        shape = random.choice(["linear", "logarithmic", "exponential"])
        return torchaudio.transforms.Fade(fi, fo, shape).to(x.device)(x)

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


def authors_views(x: torch.Tensor, tfs, orders: list, sync=lambda: None) -> list:
    "Two views of every clip of `x [B, T]`, clip i through the transforms `orders[i]` (indices into `tfs`), shared by its views."
    out = []
    for clip, order in zip(x, orders):
        for _view in range(2):
            y = clip.reshape(1, 1, -1)
            for i in order:
                y = tfs[i](y)
            out.append(y.reshape(-1))
    sync()
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


def audiomentations_views(x: np.ndarray, tfs, orders: list) -> list:
    "As `authors_views`, with audiomentations on numpy arrays `[T]`."
    out = []
    for clip, order in zip(x, orders):
        for _view in range(2):
            y = clip
            for i in order:
                y = tfs[i](samples=y, sample_rate=SR)
            out.append(y)
    return out


def pitch_shift_bound():
    "What-if for `--pitch-bound`: a `PitchShift` that costs one same-length phase-vocoder pass (the fused time stretch's rate, else 1) and no resampling; it does not shift the pitch."
    from mtslvr.augment import PitchShift
    from mtslvr.dsp import time_stretch

    class _Bound(PitchShift):
        def apply(self, x, semitones, stretch=None):
            rate = torch.ones_like(semitones, dtype=torch.float64) if stretch is None else stretch
            y, _ = time_stretch(x, rate, n_fft=self.n_fft, hop_length=self.hop_length, window=self.window, out_length=x.shape[1])
            return y.to(x.dtype)
    return _Bound()


def breakdown(x: torch.Tensor, repeats: int, clock: str, sync) -> None:
    "Where mtslvr's pipeline spends its time: each augmentation on the whole batch, weighted by how often it runs."
    from mtslvr.augment import AUGMENTATIONS
    from mtslvr.pipeline import default_augmentations
    augs = default_augmentations(SR, x.device)
    gen = torch.Generator().manual_seed(1)
    share_applied = 4 / 7     # uniform sampling: E[k] / 7 = 4 / 7 of the views get each augmentation
    rows = []
    for name in AUGMENTATIONS:
        params = augs[name].sample_params(x.shape[0], gen, x.device)
        t = time_it(lambda: (augs[name](x, params=params), sync()), repeats, clock)
        rows.append((name, 1e3 * t / x.shape[0]))
    expected = sum(ms for _, ms in rows) * share_applied
    print(f"\nbreakdown of mtslvr's pipeline ({x.shape[0]} clips per call, {clock} clock):")
    print(f"{'augmentation':<16}{'ms/clip':>9}{'share':>8}")
    for name, ms in rows:
        print(f"{name:<16}{ms:>9.2f}{100 * ms * share_applied / expected:>7.1f}%")
    print(f"expected ms per view from these: {expected:.2f} (= {1e3 / expected:.1f} views/s; the rest of the pipeline's "
          "time is sampling, grouping and copying)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=32, help="clips per batch (views = 2 x batch)")
    ap.add_argument("--peer-batch", type=int, default=0, help="clips of each batch timed for the slower peers (default: all)")
    ap.add_argument("--repeats", type=int, default=4, help="batches, each with its own draw of the structure, shared by all methods")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    ap.add_argument("--skip-peers", action="store_true")
    ap.add_argument("--breakdown", action="store_true", help="also time each augmentation of mtslvr's pipeline alone")
    ap.add_argument("--pitch-bound", action="store_true",
                    help="also time the pipeline with its pitch shift replaced by one same-length phase-vocoder pass (a what-if: "
                         "the cost of any STFT-domain pitch shift without a resampler is at least this)")
    ap.add_argument("--malloc-defaults", action="store_true", help="leave glibc's allocator settings alone (no retain_freed_memory)")
    ap.add_argument("--clock", choices=list(CLOCKS), default=None,
                    help="wall or cpu (process CPU time; fair on a shared machine with --threads 1); default: cpu on CPU, wall on CUDA")
    a = ap.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    from mtslvr.dsp import retain_freed_memory
    allocator = False if a.malloc_defaults else retain_freed_memory()   # what mtslvr's CLI does; it applies to the peers too
    a.peer_batch = a.peer_batch or a.batch
    if a.peer_batch > a.batch and not a.skip_peers: raise SystemExit(f"--peer-batch ({a.peer_batch}) must be <= --batch ({a.batch})")
    random.seed(0); torch.manual_seed(0); np.random.seed(0)
    dev = torch.device(a.device)
    if dev.type == "cuda" and not torch.cuda.is_available(): raise SystemExit("--device cuda: no CUDA device here")
    clock = a.clock or ("wall" if dev.type == "cuda" else "cpu")
    if clock == "cpu" and dev.type == "cuda": raise SystemExit("--clock cpu does not see GPU work: use --clock wall with --device cuda")
    x = real_clips(a.batch).to(dev)
    print(f"augmentation benchmark: {a.batch} clips x 5 s @ 16 kHz, two views, k ~ U{{1..7}}; device {dev}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}, "
          f"{clock} clock; freed memory kept for reuse: {allocator}")

    def sync():
        if dev.type == "cuda": torch.cuda.synchronize()

    from mtslvr.pipeline import default_augmentations, sample_pipeline
    # The same workload for everyone: `repeats` batches, each with its structure (which augmentations, in
    # which order, per clip) drawn once by mtslvr's sampler; the peers apply those same lists to the same
    # clips (their parameters drawn by their own code from the same ranges). The number of augmentations
    # per clip varies a lot between draws (k ~ U{1..7}), so separate draws would make the ratios noisy.
    gen = torch.Generator().manual_seed(0)
    augs0 = default_augmentations(SR, dev)
    pipelines = [sample_pipeline(a.batch, generator=gen, device=dev, augmentations=augs0) for _ in range(a.repeats)]
    orders = [[[i for i in row if i >= 0] for row in p.order.tolist()] for p in pipelines]
    now = CLOCKS[clock]

    def ours(r):
        v1, v2 = pipelines[r].apply(x); sync()

    n_fft, hop, win = 1024, 256, torch.hann_window(1024, device=dev)

    def floor(r):
        s = torch.stft(x, n_fft, hop, window=win, return_complex=True)
        torch.istft(s, n_fft, hop, window=win, length=T); sync()

    from mtslvr.dsp import istft as m_istft, stft as m_stft

    def floor_ours(r):   # mtslvr.dsp's pair: the same stft, its own frame-major istft
        m_istft(m_stft(x, n_fft, hop, window=win), n_fft, hop, window=win, length=T); sync()

    # (name, function of the batch index, views per call, calls per batch)
    methods = [("mtslvr pipeline (batched)", ours, 2 * a.batch, 2), ("floor: one stft+istft round trip", floor, a.batch, 2),
               ("floor, mtslvr.dsp stft+istft", floor_ours, a.batch, 2)]
    if a.pitch_bound:
        from mtslvr.pipeline import Pipeline
        augs = torch.nn.ModuleDict({**pipelines[0].augmentations, "pitch_shift": pitch_shift_bound().to(dev)})
        bound = [Pipeline(p.order, p.params, augs, p.mode, p.device) for p in pipelines]
        methods.append(("what-if: pitch shift = 1 vocoder pass", lambda r: (bound[r].apply(x), sync()), 2 * a.batch, 2))
    if not a.skip_peers:
        xp, nb = x[:a.peer_batch], a.peer_batch
        tfs = authors_transforms(dev)      # (a) runs where the authors ran it: on the benchmark's device, one example at a time
        xn, atfs = xp.cpu().numpy(), audiomentations_transforms()     # (b) is a CPU library
        methods += [("(a) authors' per-example loop", lambda r: authors_views(xp, tfs, orders[r][:nb], sync), 2 * nb, 1),
                    ("(b) audiomentations per example (CPU)", lambda r: audiomentations_views(xn, atfs, orders[r][:nb]), 2 * nb, 1)]
    # Batch by batch, every method in turn: a machine whose speed drifts (shared hosts do) slows them alike
    seconds = [0.0] * len(methods)
    for _name, fn, _views, _calls in methods: fn(0)      # warm-up
    for r in range(a.repeats):
        for m, (_name, fn, _views, calls) in enumerate(methods):
            t0 = now()
            for _ in range(calls): fn(r)
            seconds[m] += now() - t0
    rows = [(name, views * calls * a.repeats / sec) for (name, _fn, views, calls), sec in zip(methods, seconds)]
    ours_rate = rows[0][1]
    print(f"{'method':<40}{'views/s':>10}{'mtslvr x':>10}")
    for name, r in rows:
        print(f"{name:<40}{r:>10.1f}{ours_rate / r:>10.2f}")
    print("('floor' counts clips per second through one STFT round trip (torch's, then mtslvr.dsp's); 'mtslvr x' = mtslvr views/s / row's rate)")
    if not a.skip_peers:
        rate = {name.split(" ")[0]: r for name, r in rows}   # "(a)", "(b)", "what-if:", ...
        target_a = 20 if dev.type == "cuda" else 10
        print(f"targets: >= {target_a}x (a)" + ("" if dev.type == "cuda" else " and >= 3x (b)") + " -> measured "
              f"{ours_rate / rate['(a)']:.2f}x (a), {ours_rate / rate['(b)']:.2f}x (b)")
        if a.pitch_bound: print(f"what-if row against (a): {rate['what-if:'] / rate['(a)']:.2f}x")
    if a.breakdown: breakdown(x, a.repeats, clock, sync)


if __name__ == "__main__":
    main()
