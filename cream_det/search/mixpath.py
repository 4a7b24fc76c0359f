"""MixPath (Chu et al., "MixPath: A Unified Approach for One-shot Neural Architecture Search").

Each step every layer runs k ~ U{1..m} distinct ops at once, drawn on rank 0 and broadcast (the
base class's ``sample``); their outputs are summed and normalised by the shadow BN of k
(:class:`~cream_det.models.mixpath_supernet.MixPathSupernet`), and the path is trained with cross-entropy.
An optional MACs constraint (``constrain_macs=True``; the authors train on every path) keeps each
draw's widths k and redraws only its op sets until the multi-path MACs fit, so k stays uniform
(:meth:`~cream_det.space.ArchSampler.sample_codes`, ``keep_widths``).

The final search is the paper's: NSGA-II over (inherited top-1 after BN recalibration, MACs) of
multi-path archs (``final_pick='pareto'``, the default; :mod:`cream_det.search.nsga2`). It writes
the Pareto front to ``pareto.json`` and ``pareto.png`` and exports the front's best arch inside
``macs_range``. ``final_pick='evolution'`` is the single-objective evolution inside the range
(SPOS's search).

The strategy owns ``max_paths`` (``strategy=dict(type='mixpath', max_paths=m)``): it tells the
engine, through :meth:`supernet_args`, to build a MixPath supernet with m shadow BNs per layer.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..errors import ConfigError
from .strategies import SPOS, register


@register
class MixPath(SPOS):
    """MixPath: up to ``max_paths`` ops per layer and step, summed under a shadow BN, CE loss.

    Args:
        max_paths: m, the most ops a layer runs at once (the paper's m; 1 <= m <= number of ops).
        op_probs, constrain_macs: as for every strategy (``op_probs`` weights the ops drawn
            without replacement; the width k stays uniform).
    """

    name = 'mixpath'
    #: the engine runs NSGA-II (``cream_det.engine.search_run``) when the config names no final_pick
    final_pick = 'pareto'

    def __init__(self, supernet: torch.nn.Module, *, max_paths: int = 2, label_smoothing: float = 0.0,
                 **kw: Any) -> None:
        if getattr(supernet, 'max_paths', None) != max_paths:
            raise ConfigError(f'strategy mixpath with max_paths={max_paths} needs a MixPath supernet of the same '
                              f'max_paths (this one: {getattr(supernet, "max_paths", None)}); build it through '
                              f'SupernetSearch, which reads max_paths from the strategy')
        # plain cross-entropy, as the MixPath authors (SPOS's authors smooth labels by 0.1)
        super().__init__(supernet, label_smoothing=label_smoothing, **kw)
        self.max_paths = max_paths

    @classmethod
    def supernet_args(cls, cfg: dict[str, Any]) -> dict[str, Any]:
        return {'max_paths': cfg.get('max_paths', 2)}

    def describe(self, code: tuple[int, ...]) -> dict[str, float]:
        """The mean number of ops the path's layers ran (bits of each present layer's mask)."""
        present = [c for c in code if c > 0]
        return {'paths_per_layer': float(np.mean([bin(c).count('1') for c in present]))}

__all__ = ['MixPath']
