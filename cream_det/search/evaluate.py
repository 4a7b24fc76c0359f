"""Scoring paths with inherited weights: the measurement behind evolution and ranking.

A path's BatchNorm statistics in the supernet are a mixture over every path that shared those
layers, so each candidate is exported as a stand-alone subnet and its BN statistics are
re-estimated on a few training batches before its accuracy is measured (SPOS's recipe).
"""
from __future__ import annotations

from itertools import islice
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch
import torch.nn as nn

Batch = tuple[torch.Tensor, torch.Tensor]


@torch.no_grad()
def recalibrate_bn(model: nn.Module, batches: Iterable[Batch]) -> nn.Module:
    """Replace every BN's running statistics with their exact average over ``batches``."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None                      # cumulative average
    model.train()
    for x, _ in batches:
        model(x)
    for m, mom in zip(bns, saved):
        m.momentum = mom
    return model.eval()


@torch.no_grad()
def accuracy(model: nn.Module, batches: Iterable[Batch]) -> float:
    """Top-1 (%) of ``model`` in eval mode."""
    model.eval()
    correct = total = 0
    for x, y in batches:
        correct += int((model(x).argmax(1) == y).sum())
        total += int(y.numel())
    return 100.0 * correct / max(total, 1)


def path_scorer(supernet: Any, calib: Sequence[Batch], val: Sequence[Batch]) -> Callable[[np.ndarray], np.ndarray]:
    """``scores(codes)``: inherited-weight top-1 of each encoded path, BN recalibrated on ``calib``."""
    def scores(codes: np.ndarray) -> np.ndarray:
        out = []
        for code in codes:
            net = recalibrate_bn(supernet.export_subnet(code), calib)
            out.append(accuracy(net, val))
        return np.asarray(out, dtype=np.float64)
    return scores


def take_batches(loader: Iterable[Any], n: int | None, unpack: Callable[[Any], Batch], device: Any = 'cpu') -> list[Batch]:
    """Materialise ``n`` (or all) batches of a loader once, so every candidate sees the same data."""
    out = []
    for data in (loader if n is None else islice(loader, n)):
        x, y = unpack(data)
        out.append((x.to(device), y.to(device)))
    return out
