"""The exact cheapest-loss combination of per-stage candidates under a MACs budget (DNA's last step).

DNA scores every candidate of every block on its own; the network is one candidate per block. Picking
it is a multiple-choice knapsack: minimise the summed loss subject to ``lo <= fixed + sum(macs) <= hi``.
Sampling would miss the optimum, so this solves it exactly:

1. *Suffix Pareto fronts* — for stages ``k..S-1``, the (MACs, loss) pairs not beaten by another
   with fewer-or-equal MACs and lower-or-equal loss. Built backwards, each from the next front
   crossed with the stage's candidates, so they stay small (hundreds, not ``prod |C_k|``).
2. If only the upper bound matters, front 0 answers directly: its best entry under ``hi``. When
   that entry is also above ``lo`` it is optimal for the two-sided problem too (the feasible set
   is a subset of the relaxed one).
3. Otherwise (the lower bound binds) a depth-first branch and bound over stages, candidates in
   order of loss, pruned by MACs reachability and by a lower bound on the remaining loss read from
   two relaxations of the suffix — "at most ``hi - m`` MACs" (the fronts of step 1) and "at least
   ``lo - m`` MACs" (the mirrored fronts). Exact; tests compare it with brute force.

With a latency range too (``latency=``, this project's extension: docs/latency.md) the MACs stay the
fronts' cost and latency is a second constraint: the shortcut of step 2 must also meet it, and the
branch and bound prunes by the latency the remaining stages can still add and checks it at each
leaf. Both bounds above ignore latency, so they stay lower bounds and the search stays exact.

Engine-free and numpy-only: ``tests/test_dna.py`` checks it against exhaustive enumeration.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..errors import SpaceError


@dataclass(frozen=True)
class Combination:
    """The chosen candidate index per stage, its summed loss and its total MACs (fixed part included),
    and its total predicted ms when a latency range was given."""

    choice: tuple[int, ...]
    loss: float
    macs: int
    latency: float | None = None


@dataclass
class _Front:
    macs: np.ndarray        # int64, ascending (or descending for the mirrored front)
    loss: np.ndarray        # float64, strictly decreasing along the array
    cand: np.ndarray        # candidate index of this stage
    nxt: np.ndarray         # row of the next stage's front


def best_combination(stage_macs: Sequence[Sequence[int]], stage_losses: Sequence[Sequence[float]],
                     macs_range: tuple[float, float], fixed_macs: int = 0,
                     latency: 'tuple[Sequence[Sequence[float]], tuple[float, float], float] | None' = None
                     ) -> Combination:
    """One candidate per stage minimising the summed loss with ``lo <= fixed + MACs <= hi``.

    Args:
        stage_macs, stage_losses: per stage, the MACs and the loss of each candidate (same lengths).
            Candidates whose loss is not finite (a diverged block) are never chosen.
        macs_range: inclusive ``(lo, hi)`` on the total MACs.
        fixed_macs: MACs of everything outside the stages (stem, head, ...).
        latency: ``(stage_ms, (lo, hi), fixed_ms)``: per stage the predicted ms of each candidate, the
            inclusive range of the total and the ms outside the stages; ``None``: no latency limit.

    Raises:
        SpaceError: no combination lies inside the range (the message gives the reachable totals).
    """
    macs = [np.asarray(m, dtype=np.int64) for m in stage_macs]
    loss = [np.asarray(v, dtype=np.float64) for v in stage_losses]
    if len(macs) != len(loss) or not macs:
        raise ValueError('best_combination needs one macs and one loss list per stage, at least one stage')
    for s, (m, v) in enumerate(zip(macs, loss)):
        if m.ndim != 1 or m.shape != v.shape:
            raise ValueError(f'stage {s}: {m.shape} MACs for {v.shape} losses')
        if (m < 0).any():
            raise ValueError(f'stage {s}: negative MACs')
    ok = [np.isfinite(v) for v in loss]
    if not all(o.any() for o in ok):
        s = next(i for i, o in enumerate(ok) if not o.any())
        raise SpaceError(f'stage {s + 1}: every candidate has a non-finite loss (the search diverged)')
    lo, hi = float(macs_range[0]) - fixed_macs, float(macs_range[1]) - fixed_macs
    n = len(macs)
    min_m = [int(m[o].min()) for m, o in zip(macs, ok)]
    max_m = [int(m[o].max()) for m, o in zip(macs, ok)]
    if sum(min_m) > hi or sum(max_m) < lo or lo > hi:
        raise SpaceError(f'MACs range [{macs_range[0] / 1e6:.2f}M, {macs_range[1] / 1e6:.2f}M] holds no combination of '
                         f'the scored candidates: totals reach from {(fixed_macs + sum(min_m)) / 1e6:.2f}M to '
                         f'{(fixed_macs + sum(max_m)) / 1e6:.2f}M')
    lat = _LatencyLimit.of(latency, ok, n)
    # remaining MACs reachable by stages k.. (index n: nothing left)
    rem_min = np.concatenate([np.cumsum(min_m[::-1])[::-1], [0]])
    rem_max = np.concatenate([np.cumsum(max_m[::-1])[::-1], [0]])
    pre_min = np.concatenate([[0], np.cumsum(min_m)])          # MACs the stages before k need at least
    pre_max = np.concatenate([[0], np.cumsum(max_m)])

    up = _suffix_fronts(macs, loss, ok, limit=lambda k, tot: tot + pre_min[k] <= hi, ascending=True)
    head = up[0]
    i = int(np.searchsorted(head.macs, hi, side='right')) - 1
    if i >= 0 and head.macs[i] >= lo:                          # the relaxed optimum is feasible: optimal
        best = _follow(up, i, fixed_macs)
        if lat is None or lat.meets(best.choice):
            return lat.complete(best) if lat else best

    down = _suffix_fronts(macs, loss, ok, limit=lambda k, tot: tot + pre_max[k] >= lo, ascending=False)
    order = [np.flatnonzero(o)[np.argsort(v[o], kind='stable')] for v, o in zip(loss, ok)]
    best_loss, best_choice = np.inf, None
    choice = [0] * n
    lat_of = lat.cost if lat else [np.zeros(len(m)) for m in macs]
    lat_lo, lat_hi = (lat.lo, lat.hi) if lat else (-np.inf, np.inf)
    lat_rem_min, lat_rem_max = (lat.rem_min, lat.rem_max) if lat else (np.zeros(n + 1), np.zeros(n + 1))

    def bound(k: int, m: int) -> float:
        return suffix_bound(up[k], down[k], lo - m, hi - m)

    def visit(k: int, m: int, v: float, t: float) -> None:
        nonlocal best_loss, best_choice
        if k == n:
            if lo <= m <= hi and lat_lo <= t <= lat_hi and v < best_loss:
                best_loss, best_choice = v, tuple(choice)
            return
        for c in order[k]:
            m2, v2, t2 = m + int(macs[k][c]), v + float(loss[k][c]), t + float(lat_of[k][c])
            if m2 + rem_min[k + 1] > hi or m2 + rem_max[k + 1] < lo:
                continue
            if t2 + lat_rem_min[k + 1] > lat_hi or t2 + lat_rem_max[k + 1] < lat_lo:
                continue
            if v2 + bound(k + 1, m2) >= best_loss:
                continue
            choice[k] = int(c)
            visit(k + 1, m2, v2, t2)

    visit(0, 0, 0.0, 0.0)
    if best_choice is None:     # every total lies outside although the extremes straddle the range
        also = f' and the latency range {lat.describe()}' if lat else ''
        raise SpaceError(f'MACs range [{macs_range[0] / 1e6:.2f}M, {macs_range[1] / 1e6:.2f}M]{also} '
                         f'{"hold" if lat else "holds"} no combination of the scored candidates '
                         f'(MACs totals reach from '
                         f'{(fixed_macs + sum(min_m)) / 1e6:.2f}M to {(fixed_macs + sum(max_m)) / 1e6:.2f}M but skip '
                         'the range); widen it')
    total = sum(int(macs[k][c]) for k, c in enumerate(best_choice))
    best = Combination(best_choice, float(sum(float(loss[k][c]) for k, c in enumerate(best_choice))),
                       fixed_macs + total)
    return lat.complete(best) if lat else best


@dataclass
class _LatencyLimit:
    """The latency side of :func:`best_combination`: per-stage ms, the range on the stages' sum, reachability."""

    cost: list[np.ndarray]
    lo: float                   # on the stages' sum (the fixed ms taken off)
    hi: float
    fixed: float
    rem_min: np.ndarray         # least / most ms stages k.. can add (index n: 0)
    rem_max: np.ndarray
    shown: tuple[float, float]

    @classmethod
    def of(cls, latency: Any, ok: list[np.ndarray], n: int) -> '_LatencyLimit | None':
        if latency is None:
            return None
        stage_ms, rng, fixed = latency
        cost = [np.asarray(t, dtype=np.float64) for t in stage_ms]
        if len(cost) != n or any(c.shape != o.shape for c, o in zip(cost, ok)):
            raise ValueError('best_combination: latency needs one ms list per stage, as long as its candidates')
        mins = [float(c[o].min()) for c, o in zip(cost, ok)]
        maxs = [float(c[o].max()) for c, o in zip(cost, ok)]
        lo, hi = float(rng[0]) - fixed, float(rng[1]) - fixed
        if sum(mins) > hi or sum(maxs) < lo or lo > hi:
            raise SpaceError(f'latency range [{rng[0]:.3f}, {rng[1]:.3f}] ms holds no combination of the scored '
                             f'candidates: totals reach from {fixed + sum(mins):.3f} to {fixed + sum(maxs):.3f} ms')
        rem_min = np.concatenate([np.cumsum(mins[::-1])[::-1], [0.0]])
        rem_max = np.concatenate([np.cumsum(maxs[::-1])[::-1], [0.0]])
        return cls(cost, lo, hi, float(fixed), rem_min, rem_max, (float(rng[0]), float(rng[1])))

    def total(self, choice: Sequence[int]) -> float:
        return float(sum(float(self.cost[k][c]) for k, c in enumerate(choice)))

    def meets(self, choice: Sequence[int]) -> bool:
        return self.lo <= self.total(choice) <= self.hi

    def complete(self, comb: Combination) -> Combination:
        return Combination(comb.choice, comb.loss, comb.macs, self.fixed + self.total(comb.choice))

    def describe(self) -> str:
        return f'[{self.shown[0]:.3f}, {self.shown[1]:.3f}] ms'


def suffix_bound(up: _Front, down: _Front, need_lo: float, need_hi: float) -> float:
    """A lower bound on the loss of a suffix of stages that must add ``need_lo..need_hi`` MACs.

    The larger of two relaxations, each read from a Pareto front of the suffix: the least loss of
    a suffix total ``<= need_hi`` (``up``, MACs ascending, loss decreasing) and the least loss of a
    total ``>= need_lo`` (``down``, MACs descending, loss decreasing). Both only drop one side of
    the range, so each is a lower bound and so is their maximum — the tighter one prunes more.
    """
    j = int(np.searchsorted(up.macs, need_hi, side='right')) - 1
    a = float(up.loss[j]) if j >= 0 else np.inf
    j = int(np.searchsorted(-down.macs, -need_lo, side='right')) - 1      # macs descending: >= need_lo is a prefix
    b = float(down.loss[j]) if j >= 0 else np.inf
    return max(a, b)


def _suffix_fronts(macs: list[np.ndarray], loss: list[np.ndarray], ok: list[np.ndarray], limit,
                   ascending: bool) -> list[_Front]:
    """Pareto fronts of stages k.. for every k (index n: the empty suffix).

    ``ascending``: fewer MACs is better (fronts for "at most" budgets, MACs ascending); otherwise
    more MACs is better (for "at least" budgets, MACs descending). ``limit(k, total)`` drops suffix
    totals no completion can use.
    """
    n = len(macs)
    fronts: list[_Front] = [None] * (n + 1)  # type: ignore[list-item]
    fronts[n] = _Front(np.zeros(1, np.int64), np.zeros(1), np.zeros(1, np.int64), np.zeros(1, np.int64))
    for k in range(n - 1, -1, -1):
        nxt = fronts[k + 1]
        cand = np.flatnonzero(ok[k])
        tot_m = (macs[k][cand][:, None] + nxt.macs[None, :]).ravel()
        tot_l = (loss[k][cand][:, None] + nxt.loss[None, :]).ravel()
        ci = np.repeat(cand, len(nxt.macs))
        ni = np.tile(np.arange(len(nxt.macs)), len(cand))
        keep = limit(k, tot_m)
        tot_m, tot_l, ci, ni = tot_m[keep], tot_l[keep], ci[keep], ni[keep]
        key_m = tot_m if ascending else -tot_m
        idx = np.lexsort((ci, tot_l, key_m))                     # better MACs first, then lower loss
        tot_l_sorted = tot_l[idx]
        prev_best = np.minimum.accumulate(np.concatenate([[np.inf], tot_l_sorted[:-1]]))
        front = idx[tot_l_sorted < prev_best]                     # strictly better loss than all before
        fronts[k] = _Front(tot_m[front], tot_l[front], ci[front], ni[front])
    return fronts


def _follow(fronts: list[_Front], row: int, fixed_macs: int) -> Combination:
    choice = []
    f0 = fronts[0]
    total_m, total_l = int(f0.macs[row]), float(f0.loss[row])
    for k in range(len(fronts) - 1):
        f = fronts[k]
        choice.append(int(f.cand[row]))
        row = int(f.nxt[row])
    return Combination(tuple(choice), total_l, fixed_macs + total_m)


__all__ = ['Combination', 'best_combination', 'suffix_bound']
