"""NT-Xent across processes (gloo, CPU): gathering negatives with gradients gives the loss and the
gradients of one process holding the whole batch."""
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from mtslvr.losses import nt_xent

WORLD, B, D = 2, 4, 6


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, port, z1, z2, out):
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        a = z1[rank * B:(rank + 1) * B].clone().requires_grad_()
        b = z2[rank * B:(rank + 1) * B].clone().requires_grad_()
        loss = nt_xent(a, b, temperature=0.5)
        loss.backward()
        local = nt_xent(a.detach(), b.detach(), temperature=0.5, gather_distributed=False)
        out[rank] = dict(loss=loss.detach(), g1=a.grad, g2=b.grad, local=local)
    finally:
        dist.destroy_process_group()


def test_nt_xent_gathers_negatives_with_gradients():
    torch.manual_seed(0)
    z1, z2 = torch.randn(WORLD * B, D, dtype=torch.float64), torch.randn(WORLD * B, D, dtype=torch.float64)
    with mp.Manager() as manager:
        shared = manager.dict()
        mp.spawn(_worker, args=(_free_port(), z1, z2, shared), nprocs=WORLD, join=True)
        out = dict(shared)
    # the full-batch reference, in one process
    r1, r2 = z1.clone().requires_grad_(), z2.clone().requires_grad_()
    full = nt_xent(r1, r2, temperature=0.5)
    full.backward()
    losses = torch.stack([out[r]["loss"] for r in range(WORLD)])
    # each rank averages over its own 2B anchors; the mean over ranks is the full-batch mean
    torch.testing.assert_close(losses.mean(), full.detach())
    # a rank's gradient holds every rank's loss (all_gather's backward sums them), i.e. WORLD x the full gradient
    g1 = torch.cat([out[r]["g1"] for r in range(WORLD)])
    g2 = torch.cat([out[r]["g2"] for r in range(WORLD)])
    torch.testing.assert_close(g1, WORLD * r1.grad)
    torch.testing.assert_close(g2, WORLD * r2.grad)
    # and gathering made a difference: the per-rank local loss (fewer negatives) is another number
    assert all(not torch.isclose(out[r]["local"], out[r]["loss"]) for r in range(WORLD))
