"""The cost limits a path must meet: a MACs range and, with a latency table, a latency range.

One place checks a range (:func:`check_range`: feasible for the archs it applies to, else one clear
error naming the reachable span) and one place says whether codes lie inside every range
(:meth:`Budget.inside`); the samplers, the evolutionary searches, NSGA-II's pick and Cream's board
filter all ask a :class:`Budget` rather than compare costs themselves.

A latency table lives in :mod:`cream_det.models.latency`, above this layer, so it is used here only
through what prices codes: ``predict_codes(codes) -> ms`` and ``bounds(depths) -> (min, max)`` (plus
``describe()`` for messages), the same gather-and-sum shape as the MACs :class:`~.flops.CostTable`.
Latency prices single-path codes only: a table times one op per layer.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from ..errors import SpaceError


class CodeLatency(Protocol):
    """What the budget needs of a latency table (:class:`cream_det.models.latency.LatencyTable`)."""

    def predict_codes(self, codes: np.ndarray) -> 'np.ndarray | float': ...

    def bounds(self, depths: Sequence[int] | None = None) -> tuple[float, float]: ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class Metric:
    """How a cost is named and written in messages."""

    name: str                           # 'MACs' or 'latency'
    fmt: Callable[[float], str]
    unit: str                           # written after a span: 'MACs', 'ms predicted latency'

    def span(self, lo: float, hi: float) -> str:
        return f'[{self.fmt(lo)}, {self.fmt(hi)}]'


MACS = Metric('MACs', lambda v: f'{v / 1e6:.2f}M', 'MACs')
LATENCY = Metric('latency', lambda v: f'{v:.3f}', 'ms predicted latency')


def check_range(metric: Metric, rng: Sequence[float], bounds: tuple[float, float], archs: str) -> tuple[float, float]:
    """``(lo, hi)`` as floats, or one clear error naming the reachable span when no arch (``archs``
    describes them) has its cost inside the range. The one check of a MACs or a latency range."""
    if rng is None or len(rng) != 2:
        raise SpaceError(f'{metric.name} range {rng!r}: give (min, max)')
    lo, hi = float(rng[0]), float(rng[1])
    tlo, thi = float(bounds[0]), float(bounds[1])
    if lo > hi or hi < tlo or lo > thi:
        raise SpaceError(f'{metric.name} range {metric.span(lo, hi)} is infeasible: {archs} have between '
                         f'{metric.fmt(tlo)} and {metric.fmt(thi)} {metric.unit}')
    return lo, hi


@dataclass(frozen=True)
class Limit:
    """One cost range: ``price(codes)`` must lie in ``[lo, hi]`` (inclusive)."""

    metric: Metric
    lo: float
    hi: float
    price: Callable[[np.ndarray], Any]

    @property
    def lo_hi(self) -> tuple[float, float]:
        return self.lo, self.hi

    def inside(self, codes: np.ndarray) -> 'np.ndarray | bool':
        cost = self.price(codes)
        return (cost >= self.lo) & (cost <= self.hi)

    def describe(self) -> str:
        return f'{self.metric.span(self.lo, self.hi)} {self.metric.unit}'


@dataclass(frozen=True)
class Budget:
    """The limits a path must meet (none: every path); see the module docstring."""

    limits: tuple[Limit, ...] = ()

    def inside(self, codes: np.ndarray) -> 'np.ndarray | bool':
        """Whether each code (rows of ``(N, slots)``, or one code) meets every limit."""
        codes = np.asarray(codes)
        ok: Any = np.ones(len(codes), dtype=bool) if codes.ndim == 2 else True
        for limit in self.limits:
            ok = ok & limit.inside(codes)
        return ok

    def __bool__(self) -> bool:
        return bool(self.limits)

    def get(self, name: str) -> Limit | None:
        return next((lim for lim in self.limits if lim.metric.name == name), None)

    def describe(self) -> str:
        return ' and '.join(lim.describe() for lim in self.limits) or 'no limit'


def latency_archs(table: CodeLatency, depths: Sequence[int] | None) -> str:
    """How a latency range's archs are named in its error: the table's and the depths."""
    return f'archs of the latency table ({table.describe()})' + (f' with depths {tuple(depths)}' if depths else '')


def latency_limit(table: CodeLatency | None, latency_range: Sequence[float] | None,
                  depths: Sequence[int] | None = None, multipath: bool = False) -> Limit | None:
    """The checked latency limit (``None`` without a range), or one clear error: a range without a
    table, a range of multi-path archs (a table prices one op per layer), an unreachable range."""
    if latency_range is None:
        return None
    if table is None:
        raise SpaceError(f'latency_range {tuple(latency_range)} needs a latency table (latency_table=FILE, '
                         'measured with tools/latency_table.py); without one there is no latency to constrain')
    if multipath:
        raise SpaceError('a latency range applies to single-path archs only: a latency table times one op per '
                         'layer, a multi-path (MixPath) layer runs several; drop latency_range or use macs_range')
    lo, hi = check_range(LATENCY, latency_range, table.bounds(depths), latency_archs(table, depths))
    return Limit(LATENCY, lo, hi, table.predict_codes)


def macs_limit(table: Any, macs_range: Sequence[float] | None, archs: str,
               depths: Sequence[int] | None = None) -> Limit | None:
    """The checked MACs limit of a cost table's codes (``None`` without a range)."""
    if macs_range is None:
        return None
    lo, hi = check_range(MACS, macs_range, table.bounds(depths), archs)
    return Limit(MACS, lo, hi, table.macs_of)


def budget(*limits: Limit | None) -> Budget:
    return Budget(tuple(lim for lim in limits if lim is not None))


def resolve_latency_range(latency_range: Sequence[Any] | None,
                          bounds: tuple[float, float]) -> tuple[float, float] | None:
    """Milliseconds from ``latency_range``, whose ends are ms or percentages of the reachable span
    (``'25%'`` = min + 0.25 * (max - min) of ``bounds``): a config measured at run time on an unknown
    device cannot name fixed milliseconds its archs will reach."""
    if latency_range is None:
        return None
    if isinstance(latency_range, (str, bytes)) or len(latency_range) != 2:
        raise SpaceError(f'latency_range {latency_range!r}: give (min, max) in ms, or as percentages of the '
                         "reachable span such as ('20%', '60%')")
    lo, hi = bounds
    out = []
    for end in latency_range:
        if isinstance(end, str) and end.strip().endswith('%'):
            try:
                frac = float(end.strip()[:-1]) / 100.0
            except ValueError:
                raise SpaceError(f'latency_range end {end!r}: a number of ms or a percentage such as "25%"') from None
            out.append(lo + frac * (hi - lo))
        else:
            try:
                out.append(float(end))
            except (TypeError, ValueError):
                raise SpaceError(f'latency_range end {end!r}: a number of ms or a percentage such as "25%"') from None
    return out[0], out[1]


def latency_guard(latency_range: tuple[float, float], margin: float) -> tuple[float, float]:
    """The range a search targets so that its pick, predicted inside it, is still inside ``latency_range`` when
    measured up to ``margin`` (a fraction of its ms) off its prediction: ``(lo * (1 + margin), hi * (1 - margin))``.
    One clear error for a margin outside [0, 0.5) or a range too narrow to keep one."""
    margin = float(margin)
    if not 0.0 <= margin < 0.5:
        raise SpaceError(f'latency_margin {margin!r}: a fraction of the ms in [0, 0.5), e.g. 0.05')
    lo, hi = latency_range
    inner = (lo * (1.0 + margin), hi * (1.0 - margin))
    if inner[0] > inner[1]:
        raise SpaceError(f'latency_range {lo:.3f}-{hi:.3f} ms is too narrow for latency_margin {margin:g}: it leaves '
                         f'{inner[0]:.3f}-{inner[1]:.3f} ms; widen the range or lower the margin')
    return inner


__all__ = ['Budget', 'CodeLatency', 'LATENCY', 'Limit', 'MACS', 'Metric', 'budget', 'check_range', 'latency_guard',
           'latency_limit', 'latency_archs', 'macs_limit', 'resolve_latency_range']
