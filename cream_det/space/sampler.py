"""Drawing architectures, optionally inside a MACs range and a (predicted) latency range.

Rejection sampling is exact (the accepted archs are distributed as the unconstrained draw
conditioned on the ranges, :class:`~.budget.Budget`) and cheap thanks to the vectorised cost
tables: candidates are drawn and costed in blocks of thousands.

With ``max_paths=m`` the sampler draws multi-path (MixPath) archs as bitmask codes
(:meth:`Arch.encode_mask`): per layer a width k uniform in 1..m, then k distinct ops (uniformly, or
with ``op_probs`` by weighted sampling without replacement), all vectorised over the block.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import SpaceError
from .arch import Arch
from .budget import Budget, CodeLatency, budget, latency_limit
from .codes import PathCodes
from .spec import CREAM_SPACE, SearchSpace


def check_depths(space: SearchSpace, depths: Sequence[int] | None) -> tuple[int, ...] | None:
    """Fixed per-stage depths as a tuple (``None``: drawn), or one clear error when they do not fit ``space``."""
    if depths is None:
        return None
    depths = tuple(int(d) for d in depths)
    if len(depths) != space.num_stages or any(
            not st.min_depth <= d <= st.max_depth for d, st in zip(depths, space.stages)):
        raise SpaceError(f'depths {depths} do not fit the stages of search space {space.name}')
    return depths


def path_budget(codes: PathCodes, resolution: int, num_classes: int, depths: Sequence[int] | None,
                macs_range: Sequence[float] | None, latency_table: CodeLatency | None = None,
                latency_range: Sequence[float] | None = None) -> Budget:
    """The checked ranges of ``codes``' archs (of ``depths``, when given) at ``resolution``: a SpaceError
    names the reachable span of a range no arch meets, or a latency range without a table."""
    depths = check_depths(codes.space, depths)
    macs = None if macs_range is None else codes.macs_limit(macs_range, resolution, num_classes, depths)
    return budget(macs, latency_limit(latency_table, latency_range, depths, codes.multipath))


class ArchSampler:
    """Draw archs of ``space`` at ``resolution``.

    Args:
        depths: fixed per-stage depths (a supernet's), or ``None`` to draw each stage's depth
            uniformly in ``[min_depth, max_depth]``.
        op_probs: per-op probabilities in the space's choice order (``None``: uniform).
        macs_range: ``(min, max)`` MACs, inclusive; ``None`` for no constraint.
        latency_table, latency_range: a latency table (:class:`cream_det.models.latency.LatencyTable`, or
            anything with its ``predict_codes``/``bounds``/``describe``) and ``(min, max)`` predicted ms,
            inclusive; drawn archs meet both ranges. Single-path codes only.
        max_paths: ``None`` for single-path codes (:meth:`Arch.encode`, -1 = absent layer);
            ``m`` for multi-path bitmask codes (:meth:`Arch.encode_mask`, 0 = absent layer) whose
            layers run 1..m distinct ops.
        keep_widths: with ``max_paths`` and ``macs_range``, keep each draw's layer widths k ~ U{1..m}
            and redraw only its op sets until the MACs fit (``redraw_rounds`` tries); ``False``
            rejects whole draws, which favours narrow layers (cheaper). Single-path draws ignore it.
    """

    def __init__(self, space: SearchSpace = CREAM_SPACE, resolution: int = 224, num_classes: int = 1000, *,
                 depths: Sequence[int] | None = None, op_probs: Sequence[float] | None = None,
                 macs_range: tuple[float, float] | None = None, seed: int | None = None,
                 max_draws: int = 2_000_000, max_paths: int | None = None, keep_widths: bool = True,
                 redraw_rounds: int = 50, latency_table: CodeLatency | None = None,
                 latency_range: tuple[float, float] | None = None) -> None:
        self.space, self.resolution, self.num_classes = space, resolution, num_classes
        #: the kind of codes drawn (single-path op indices or MixPath op-set masks): asked, not branched on
        self.codes = PathCodes(space, max_paths)
        self.max_paths = self.codes.max_paths
        self.table = self.codes.cost_table(resolution, num_classes)
        #: what an absent layer is in a code, and the codes' dtype
        self.absent, self.code_dtype = self.codes.absent, self.codes.dtype
        self.depths = depths = check_depths(space, depths)
        if op_probs is not None:
            p = np.asarray(op_probs, dtype=np.float64)
            if p.shape != (len(space.ops),) or (p < 0).any() or p.sum() <= 0:
                raise SpaceError(f'op_probs must be {len(space.ops)} non-negative numbers, got {list(op_probs)}')
            op_probs = p / p.sum()
            self.codes.check_probs(p)
        self.op_probs = op_probs
        self.latency_table = latency_table
        #: the ranges a drawn arch meets (asked through :meth:`inside`)
        self.budget: Budget = path_budget(self.codes, resolution, num_classes, depths, macs_range, latency_table,
                                          latency_range)
        macs, latency = self.budget.get('MACs'), self.budget.get('latency')
        self.macs_range = None if macs is None else macs.lo_hi
        self.latency_range = None if latency is None else latency.lo_hi
        self.rng = np.random.default_rng(seed)
        self.max_draws = max_draws
        self.keep_widths, self.redraw_rounds = bool(keep_widths), int(redraw_rounds)

    def _draw(self, n: int) -> np.ndarray:
        sp, rng = self.space, self.rng
        codes = np.full((n, sp.max_layers), self.absent, dtype=self.code_dtype)
        off = 0
        for s, st in enumerate(sp.stages):
            ops = self.codes.draw_layers(rng, (n, st.max_depth), self.op_probs)
            if self.depths is not None:
                d = np.full(n, self.depths[s])
            else:
                d = rng.integers(st.min_depth, st.max_depth + 1, size=n)
            ops[np.arange(st.max_depth)[None, :] >= d[:, None]] = self.absent
            codes[:, off:off + st.max_depth] = ops
            off += st.max_depth
        return codes

    def random_layers(self, n: int) -> np.ndarray:
        """``n`` uniformly drawn layer values (op indices or op-set masks), e.g. for mutations."""
        return self.codes.random_layers(self.rng, n)

    def decode(self, code: Sequence[int]) -> Arch:
        """The :class:`Arch` of one code of this sampler's kind."""
        return Arch.from_code(code, self.codes, self.resolution, self.num_classes)

    def inside(self, codes: np.ndarray) -> 'np.ndarray | bool':
        """Whether codes (rows, or one code) meet this sampler's ranges."""
        return self.budget.inside(codes)

    def sample_codes(self, n: int, block: int = 8192) -> np.ndarray:
        """``n`` encoded archs (rows of :meth:`Arch.encode`) inside the ranges."""
        if not self.budget:
            return self._draw(n)
        if self.codes.multipath and self.keep_widths:
            return self._sample_keep_widths(n, block)
        out, have, drawn = [], 0, 0
        while have < n:
            if drawn >= self.max_draws:
                raise SpaceError(f'only {have} of {n} archs found inside {self.budget.describe()} after {drawn:,} '
                                 'draws; the range is feasible but too narrow for sampling — widen it')
            codes = self._draw(block)
            drawn += block
            ok = codes[self.inside(codes)]
            out.append(ok[:n - have])
            have += len(out[-1])
        return np.concatenate(out)

    def _sample_keep_widths(self, n: int, block: int) -> np.ndarray:
        """Multi-path codes inside the MACs range whose layer widths stay k ~ U{1..m}.

        Plain rejection would keep cheap draws, and a layer's cost grows with its k, so accepted
        archs would run fewer ops than MixPath's uniform k. Here each draw keeps its depths and
        widths and only its op sets are redrawn (``redraw_rounds`` times) until its MACs fit; a
        draw whose widths fit no op sets in those rounds is dropped and drawn anew (widths with
        so few fitting op sets are rare in a range that holds typical archs; the acceptance of
        widths is measured by ``tests/test_mixpath.py``).
        """
        out, have, drawn = [], 0, 0
        while have < n:
            if drawn >= self.max_draws:
                raise SpaceError(f'only {have} of {n} archs found inside {self.budget.describe()} '
                                 f'after {drawn:,} draws and op-set redraws; the range is feasible but too narrow '
                                 'for sampling — widen it')
            size = min(block, max(256, 8 * (n - have)))       # a training step needs one arch, not thousands
            codes = self._draw(size)
            drawn += size
            width = self.codes.widths(codes)
            present = codes != self.absent
            for _ in range(self.redraw_rounds):
                bad = ~self.inside(codes)
                if not bad.any():          # no early exit once enough fit: that would favour easily fitting k
                    break
                redo = bad[:, None] & present
                codes[redo] = self.codes.masks_of_width(self.rng, width[redo], self.op_probs)
                drawn += int(bad.sum())
            ok = codes[self.inside(codes)]
            out.append(ok[:n - have])
            have += len(out[-1])
        return np.concatenate(out)

    def sample(self) -> Arch:
        return self.decode(self.sample_codes(1)[0])

