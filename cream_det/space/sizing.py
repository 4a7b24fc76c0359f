"""Supernet sizing: how deep each stage of a supernet must be for a MACs range (the authors' rule),
and, with a latency table, for the top of a latency range too.

Cost arithmetic over the search space's tables, so it lives with them; the supernet itself
(:class:`cream_det.models.supernet.Supernet`) takes the depths it gets.
"""
from __future__ import annotations

from typing import Any, Sequence

from ..errors import SpaceError
from .budget import LATENCY, CodeLatency, latency_archs
from .flops import cost_table
from .spec import SearchSpace

#: The authors' supernet sizing rule (their ``search_for_layer``): stages are grown in this order,
#: first up to 3, 3, 3, 2, 2 layers, then up to 4 each.
AUTHORS_GROW_ORDER = (2, 3, 4, 1, 0)
AUTHORS_CAPS = ((3, 3, 3, 2, 2), (4, 4, 4, 4, 4))



def supernet_depths(space: SearchSpace, macs_range: tuple[float, float], resolution: int = 224,
                    num_classes: int = 1000, *, grow_order: Sequence[int] = AUTHORS_GROW_ORDER,
                    caps: Sequence[Sequence[int]] = AUTHORS_CAPS, latency_table: CodeLatency | None = None,
                    latency_max: float | None = None) -> tuple[tuple[int, ...], int]:
    """Supernet depths (and resolution) for a MACs range, by the authors' rule.

    Start from one layer per stage; visit stages in ``grow_order`` once per pass of ``caps`` and
    add layers to each up to its cap while the all-most-expensive-op network stays within the
    maximum, stopping at the first layer that would exceed it. If even the smallest network is
    over the maximum, the resolution drops by the space's resolution multiple (32) and the rule
    restarts. MACs include the fixed stem and head (the authors count only the searched blocks).

    With ``latency_table`` and ``latency_max`` (this project's extension), a layer is added only while
    the all-slowest-op network also stays within ``latency_max`` predicted ms; the table is measured at
    one resolution, so the rule does not lower it for latency (an error names the smallest net's ms).
    """
    lo, hi = float(macs_range[0]), float(macs_range[1])
    if lo > hi:
        raise SpaceError(f'MACs range [{lo / 1e6:.2f}M, {hi / 1e6:.2f}M]: minimum above maximum')
    if sorted(grow_order) != list(range(space.num_stages)) or any(len(c) != space.num_stages for c in caps):
        raise SpaceError(f"the sizing rule's grow_order/caps are for {len(grow_order)} stages, search space "
                         f'{space.name} has {space.num_stages}; pass grow_order and caps for it, or depths directly')
    step = space.resolution_multiple
    start = tuple(max(1, st.min_depth) for st in space.stages)
    limits = []
    if latency_table is not None and latency_max is not None:
        least = latency_table.bounds(start)[0]
        if least > latency_max:
            raise SpaceError(f'latency maximum {LATENCY.fmt(latency_max)} ms is infeasible for sizing a supernet: '
                             f'{latency_archs(latency_table, start)} need at least {LATENCY.fmt(least)} ms; '
                             'raise it, or give depths explicitly')
        limits.append((latency_table, float(latency_max)))
    for res in range(resolution, step - 1, -step):
        table = cost_table(space, res, num_classes)
        if table.bounds(start)[0] <= hi:
            depths = _grow(space, [(table, hi), *limits], start, grow_order, caps)
            top = table.bounds(depths)[1]
            if top < lo:
                raise SpaceError(f'MACs range [{lo / 1e6:.2f}M, {hi / 1e6:.2f}M]: the largest supernet the sizing '
                                 f'rule builds (depths {depths} at {res}) reaches only {top / 1e6:.2f}M; lower the '
                                 f'minimum or give depths explicitly')
            return depths, res
    smallest = cost_table(space, step, num_classes).bounds(start)[0]
    raise SpaceError(f'MACs range [{lo / 1e6:.2f}M, {hi / 1e6:.2f}M] is infeasible: the smallest network of search '
                     f'space {space.name} needs {smallest / 1e6:.2f}M MACs even at resolution {step}; '
                     f'raise the maximum to at least {smallest:,}')


def _grow(space: SearchSpace, limits: Sequence[tuple[Any, float]], start: tuple[int, ...],
          grow_order: Sequence[int], caps: Sequence[Sequence[int]]) -> tuple[int, ...]:
    """Grow ``start`` by the rule while every ``(table, hi)`` keeps its dearest arch within ``hi``."""
    depths = list(start)
    for pass_caps in caps:
        for k, s in enumerate(grow_order):
            cap = min(pass_caps[k], space.stages[s].max_depth)
            while depths[s] < cap:
                depths[s] += 1
                if any(t.bounds(tuple(depths))[1] > h for t, h in limits):
                    depths[s] -= 1
                    return tuple(depths)
    return tuple(depths)


__all__ = ['AUTHORS_CAPS', 'AUTHORS_GROW_ORDER', 'supernet_depths']
