"""The comparison's statistics, engine-free: a supernet's agreement with itself over seeds, and a paired difference of
two strategies with its confidence interval.

A tau against the ground truth means something only when the supernet reproduces its own scores: a strategy whose
seeds rank the same archs with tau 0.1 cannot rank them against anything (``self_consistency``). Two strategies'
convergence is compared per path, paired by seed: seed *k* of every strategy starts from the same init and sees the
same data order, and every supernet scores the same fixed paths, so a (seed, path) pair removes both the seed's and
the path's own level from the difference (``paired_difference``).
"""
from __future__ import annotations

import itertools
from typing import Sequence

import numpy as np

from cream_det.search.ranking import kendall_tau

#: below this seed-vs-seed tau a strategy's tau against the ground truth is not read (issue 32)
SELF_CONSISTENCY_BAR = 0.5


def self_consistency(scores: Sequence[Sequence[float]], truth: Sequence[float]) -> dict:
    """``scores[seed][arch]`` of one strategy: the tau of every pair of its seeds' scores and their mean (how well it
    agrees with itself), the tau of its seed-averaged scores against ``truth``, and whether that tau can be read
    (the mean pair tau at ``SELF_CONSISTENCY_BAR`` or above; one seed: no estimate, so not)."""
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2 or s.shape[1] != len(truth):
        raise ValueError(f'self_consistency: scores of shape {s.shape} against {len(truth)} ground-truth archs')
    pairs = [kendall_tau(s[a], s[b]) for a, b in itertools.combinations(range(len(s)), 2)]
    mean = float(np.nanmean(pairs)) if pairs and not np.all(np.isnan(pairs)) else float('nan')
    return {'seed_pairs': pairs, 'self_tau': mean, 'tau_of_mean': kendall_tau(s.mean(0), truth),
            'interpretable': bool(mean >= SELF_CONSISTENCY_BAR)}


def paired_difference(a: Sequence[Sequence[float]], b: Sequence[float] | Sequence[Sequence[float]],
                      level: float = 0.9, resamples: int = 4000, seed: int = 0) -> dict:
    """``a - b`` over pairs: ``a[seed][path]`` and ``b[seed][path]`` are two strategies' scores of the same paths
    with the same seeds, so each (seed, path) is one pair.

    The interval is a two-stage percentile bootstrap of the mean difference: seeds drawn with replacement, then
    paths with replacement within each drawn seed, so it carries the spread between seeds (paths of one supernet
    are not independent of each other) as well as between paths. ``per_seed``: each seed's mean difference, and
    ``ahead``: in how many seeds ``a`` leads. A fixed ``seed`` makes the interval reproducible."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 2:
        raise ValueError(f'paired_difference: shapes {x.shape} and {y.shape}; both must be [seeds][paths], the same')
    if not 0 < level < 1:
        raise ValueError(f'paired_difference: level={level}; a coverage between 0 and 1')
    d = x - y
    seeds, paths = d.shape
    rng = np.random.default_rng(seed)
    pick_seeds = rng.integers(0, seeds, size=(resamples, seeds))
    pick_paths = rng.integers(0, paths, size=(resamples, seeds, paths))
    means = d[pick_seeds[:, :, None], pick_paths].mean(axis=(1, 2))
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    per_seed = d.mean(1)
    return {'mean': float(d.mean()), 'lo': float(lo), 'hi': float(hi), 'level': level, 'pairs': int(d.size),
            'seeds': seeds, 'paths': paths, 'per_seed': per_seed.tolist(), 'ahead': int((per_seed > 0).sum())}


__all__ = ['SELF_CONSISTENCY_BAR', 'paired_difference', 'self_consistency']
