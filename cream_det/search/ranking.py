"""How well a supernet ranks paths: Kendall's tau between inherited and stand-alone accuracies."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def kendall_tau(a: Sequence[float], b: Sequence[float]) -> float:
    """Kendall's tau-b (ties in either ranking handled as scipy does); NaN when a ranking is constant.

    O(n^2) over all pairs: search evaluations rank tens to hundreds of paths, where clarity wins.
    """
    x, y = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f'kendall_tau: {x.size} scores against {y.size}; both rankings must cover the same paths')
    if x.size < 2:
        return float('nan')
    iu = np.triu_indices(x.size, k=1)
    dx = np.sign(x[:, None] - x[None, :])[iu]
    dy = np.sign(y[:, None] - y[None, :])[iu]
    denom = np.sqrt(float(np.count_nonzero(dx)) * float(np.count_nonzero(dy)))
    return float(np.sum(dx * dy) / denom) if denom > 0 else float('nan')


def seed_noise(top1: Sequence[Sequence[float]]) -> dict[str, float]:
    """How far a stand-alone ground truth can be trusted, from its runs: ``top1[seed][arch]``.

    A ground truth's seed-vs-seed tau over a dozen archs swings by about 0.2 from one pair of seeds to
    the next, so one tau says little about the recipe. Its two causes do not swing as much: ``noise``,
    the std of one run about its arch's mean (pooled over archs), and ``spread``, the std of the archs'
    true means (the variance of the observed means less the noise they still carry, ``noise**2 / seeds``).
    ``expected_tau`` is the tau two seeds agree with on average if both are Gaussian:
    ``2/pi * asin(spread**2 / (spread**2 + noise**2))`` (Greiner's relation), so 0.5 needs the noise at
    about 0.64 of the spread.
    """
    acc = np.asarray(top1, dtype=np.float64)
    if acc.ndim != 2 or acc.shape[0] < 2 or acc.shape[1] < 2:
        raise ValueError(f'seed_noise: top-1 of shape {acc.shape}; needs [seeds][archs] with at least 2 of each')
    seeds = acc.shape[0]
    noise2 = float(acc.var(axis=0, ddof=1).mean())
    spread2 = max(0.0, float(acc.mean(axis=0).var(ddof=1)) - noise2 / seeds)
    rho = spread2 / (spread2 + noise2) if spread2 + noise2 > 0 else float('nan')
    return {'noise': math.sqrt(noise2), 'spread': math.sqrt(spread2), 'expected_tau': 2 / math.pi * math.asin(rho)}


__all__ = ['kendall_tau', 'seed_noise']
