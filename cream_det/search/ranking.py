"""How well a supernet ranks paths: Kendall's tau between inherited and stand-alone accuracies."""
from __future__ import annotations

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


__all__ = ['kendall_tau']
