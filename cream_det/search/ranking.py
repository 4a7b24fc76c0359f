"""How well a supernet ranks paths: Kendall's tau between inherited and stand-alone accuracies."""
from __future__ import annotations

import itertools
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


def expected_tau(noise: float, spread: float, runs: int = 1) -> float:
    """The tau two ground truths agree with on average when each is the mean of ``runs`` stand-alone runs per
    arch: ``2/pi * asin(spread**2 / (spread**2 + noise**2 / runs))`` (Greiner's relation for two Gaussian
    rankings of the same true means). A ground truth averaged over seeds is judged by this, not by the tau of
    single seeds: its own noise is ``noise / sqrt(runs)``."""
    if runs < 1:
        raise ValueError(f'expected_tau: runs={runs}; a ground truth is the mean of at least one run')
    var = spread ** 2 + noise ** 2 / runs
    return 2 / math.pi * math.asin(spread ** 2 / var) if var > 0 else float('nan')


def seed_noise(top1: Sequence[Sequence[float]]) -> dict[str, float]:
    """How far a stand-alone ground truth can be trusted, from its runs: ``top1[seed][arch]``.

    A ground truth's seed-vs-seed tau over a dozen archs swings by about 0.2 from one pair of seeds to
    the next, so one tau says little about the recipe. Its two causes do not swing as much: ``noise``,
    the std of one run about its arch's mean (pooled over archs), and ``spread``, the std of the archs'
    true means (the variance of the observed means less the noise they still carry, ``noise**2 / seeds``).
    ``expected_tau`` is the tau two seeds agree with on average if both are Gaussian (``expected_tau()``
    with one run: 0.5 needs the noise at about 0.64 of the spread); ``expected_tau_of_means`` the tau of two
    ground truths each made as this one was, the mean of all its seeds.
    """
    acc = np.asarray(top1, dtype=np.float64)
    if acc.ndim != 2 or acc.shape[0] < 2 or acc.shape[1] < 2:
        raise ValueError(f'seed_noise: top-1 of shape {acc.shape}; needs [seeds][archs] with at least 2 of each')
    seeds = acc.shape[0]
    noise2 = float(acc.var(axis=0, ddof=1).mean())
    spread2 = max(0.0, float(acc.mean(axis=0).var(ddof=1)) - noise2 / seeds)
    noise, spread = math.sqrt(noise2), math.sqrt(spread2)
    return {'noise': noise, 'spread': spread, 'expected_tau': expected_tau(noise, spread),
            'expected_tau_of_means': expected_tau(noise, spread, seeds)}


def split_half_taus(top1: Sequence[Sequence[float]]) -> list[tuple[tuple[int, ...], tuple[int, ...], float]]:
    """Each split of an even number (>= 4) of seeds into two halves, with the tau of the halves' means: the
    measured agreement of two ground truths of half as many seeds each, beside ``expected_tau`` of that many."""
    acc = np.asarray(top1, dtype=np.float64)
    n = acc.shape[0] if acc.ndim == 2 else 0
    if n < 4 or n % 2:
        raise ValueError(f'split_half_taus: top-1 of shape {acc.shape}; needs [seeds][archs] with an even number '
                         f'of seeds, at least 4')
    out = []
    for half in itertools.combinations(range(1, n), n // 2 - 1):
        a = (0, *half)
        b = tuple(s for s in range(n) if s not in a)
        out.append((a, b, kendall_tau(acc[list(a)].mean(0), acc[list(b)].mean(0))))
    return out


__all__ = ['expected_tau', 'kendall_tau', 'seed_noise', 'split_half_taus']
