"""Drawing architectures, optionally inside a MACs range.

Rejection sampling is exact (the accepted archs are distributed as the unconstrained draw
conditioned on the range) and cheap thanks to the vectorised cost table: candidates are drawn and
costed in blocks of thousands.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import SpaceError
from .arch import Arch
from .flops import cost_table
from .spec import CREAM_SPACE, SearchSpace


class ArchSampler:
    """Draw archs of ``space`` at ``resolution``.

    Args:
        depths: fixed per-stage depths (a supernet's), or ``None`` to draw each stage's depth
            uniformly in ``[min_depth, max_depth]``.
        op_probs: per-op probabilities in the space's choice order (``None``: uniform).
        macs_range: ``(min, max)`` MACs, inclusive; ``None`` for no constraint.
    """

    def __init__(self, space: SearchSpace = CREAM_SPACE, resolution: int = 224, num_classes: int = 1000, *,
                 depths: Sequence[int] | None = None, op_probs: Sequence[float] | None = None,
                 macs_range: tuple[float, float] | None = None, seed: int | None = None,
                 max_draws: int = 2_000_000) -> None:
        self.space, self.resolution, self.num_classes = space, resolution, num_classes
        self.table = cost_table(space, resolution, num_classes)
        if depths is not None:
            depths = tuple(int(d) for d in depths)
            if len(depths) != space.num_stages or any(
                    not st.min_depth <= d <= st.max_depth for d, st in zip(depths, space.stages)):
                raise SpaceError(f'depths {depths} do not fit the stages of search space {space.name}')
        self.depths = depths
        if op_probs is not None:
            p = np.asarray(op_probs, dtype=np.float64)
            if p.shape != (len(space.ops),) or (p < 0).any() or p.sum() <= 0:
                raise SpaceError(f'op_probs must be {len(space.ops)} non-negative numbers, got {list(op_probs)}')
            op_probs = p / p.sum()
        self.op_probs = op_probs
        self.macs_range = None
        if macs_range is not None:
            lo, hi = float(macs_range[0]), float(macs_range[1])
            tlo, thi = self.table.bounds(depths)
            if lo > hi or hi < tlo or lo > thi:
                raise SpaceError(
                    f'MACs range [{lo / 1e6:.2f}M, {hi / 1e6:.2f}M] is infeasible: archs of search space '
                    f'{space.name} at resolution {resolution}' + (f' with depths {depths}' if depths else '')
                    + f' have between {tlo / 1e6:.2f}M and {thi / 1e6:.2f}M MACs')
            self.macs_range = (lo, hi)
        self.rng = np.random.default_rng(seed)
        self.max_draws = max_draws

    def _draw(self, n: int) -> np.ndarray:
        sp, rng = self.space, self.rng
        codes = np.full((n, sp.max_layers), -1, dtype=np.int8)
        off = 0
        for s, st in enumerate(sp.stages):
            ops = rng.choice(len(sp.ops), size=(n, st.max_depth), p=self.op_probs).astype(np.int8)
            if self.depths is not None:
                d = np.full(n, self.depths[s])
            else:
                d = rng.integers(st.min_depth, st.max_depth + 1, size=n)
            ops[np.arange(st.max_depth)[None, :] >= d[:, None]] = -1
            codes[:, off:off + st.max_depth] = ops
            off += st.max_depth
        return codes

    def sample_codes(self, n: int, block: int = 8192) -> np.ndarray:
        """``n`` encoded archs (rows of :meth:`Arch.encode`) inside the MACs range."""
        if self.macs_range is None:
            return self._draw(n)
        lo, hi = self.macs_range
        out, have, drawn = [], 0, 0
        while have < n:
            if drawn >= self.max_draws:
                raise SpaceError(f'only {have} of {n} archs found inside [{lo / 1e6:.2f}M, {hi / 1e6:.2f}M] MACs '
                                 f'after {drawn:,} draws; the range is feasible but too narrow for sampling — widen it')
            codes = self._draw(block)
            drawn += block
            macs = self.table.macs_of(codes)
            ok = codes[(macs >= lo) & (macs <= hi)]
            out.append(ok[:n - have])
            have += len(out[-1])
        return np.concatenate(out)

    def sample(self) -> Arch:
        return Arch.decode(self.sample_codes(1)[0], self.space, self.resolution, self.num_classes)
