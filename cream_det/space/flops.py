"""Exact MACs and parameter counts, analytic and vectorised.

Convention (the one that gives the published names 14M … 604M): multiply-accumulates of every
convolution and linear layer (biases not counted), plus 2 per element for each BatchNorm in eval
mode, plus 1 per *input* element for each average pooling (the head's global pool and each SE
squeeze). Activations, the SE gate multiply and residual adds count 0. This is fvcore's
``FlopCountAnalysis`` on the authors' network, whose SE squeeze is an ``AdaptiveAvgPool2d``; timm's
SE squeezes with ``mean``, so the profiler cross-check registers the same pooling rule for
``aten::mean`` (see ``tests/test_flops.py``). Parameters are trainable parameters (BN buffers excluded).

Every layer slot's cost depends only on its own op (input width, stride and feature-map size are
fixed by the slot), so a per-slot table makes the cost of N archs a gather-and-sum over an
``(N, slots)`` int8 matrix: millions of archs per second, enough to reject-sample inside a range.

A multi-path (MixPath) layer runs its ops' inverted-residual branches without their own final BN,
sums them, and normalises the sum with one BN before the residual (``models.mixed_op``); so its
cost is the sum of its branches' costs minus all but one final BN. :class:`MaskCostTable` tabulates
that for every op subset of every slot (``2**ops`` columns), so bitmask codes
(:meth:`Arch.encode_mask`) are costed by the same gather-and-sum.

Which table prices an arch is a question of its kind of code, so an arch's own cost is
:func:`cream_det.space.codes.arch_cost`'s; this module knows tables and spaces, not archs.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .spec import MAX_MASK_OPS, FixedBlock, Op, SearchSpace


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None, round_limit: float = 0.9) -> int:
    """timm's channel rounding (tested equal to ``timm.layers.make_divisible``)."""
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < round_limit * v:
        new_v += divisor
    return new_v


def _out(size: int, stride: int) -> int:
    # every conv pads k // 2 with odd k, so the output is ceil(size / stride)
    return (size - 1) // stride + 1


@dataclass(frozen=True)
class Cost:
    macs: int
    params: int


def _bn(c: int, hw: int) -> Cost:
    return Cost(2 * c * hw, 2 * c)


def _se(c: int, hw: int, ratio: float) -> Cost:
    if ratio <= 0:                                          # 'se0': timm builds no SE
        return Cost(0, 0)
    rd = make_divisible(c * ratio)
    return Cost(c * hw + 2 * c * rd, 2 * c * rd + rd + c)   # squeeze pool + reduce + expand (biases are params)


def _sum(*cs: Cost) -> Cost:
    return Cost(sum(c.macs for c in cs), sum(c.params for c in cs))


def ir_cost(c_in: int, c_out: int, op: Op, stride: int, size: int, se_ratio: float) -> Cost:
    """One inverted-residual block on a ``size x size`` input."""
    mid = make_divisible(c_in * op.expansion)
    hw_in, hw_out = size * size, _out(size, stride) ** 2
    k2 = op.kernel * op.kernel
    return _sum(Cost(c_in * mid * hw_in, c_in * mid), _bn(mid, hw_in),            # 1x1 expand
                Cost(mid * k2 * hw_out, mid * k2), _bn(mid, hw_out),               # kxk depthwise
                _se(mid, hw_out, se_ratio),
                Cost(mid * c_out * hw_out, mid * c_out), _bn(c_out, hw_out))       # 1x1 project


def ds_cost(c_in: int, c_out: int, kernel: int, stride: int, size: int, se_ratio: float) -> Cost:
    """One depthwise-separable block (timm's ``ds``): kxk depthwise, SE on the input width, 1x1 project."""
    hw_out = _out(size, stride) ** 2
    return _sum(Cost(c_in * kernel * kernel * hw_out, c_in * kernel * kernel), _bn(c_in, hw_out),
                _se(c_in, hw_out, se_ratio), Cost(c_in * c_out * hw_out, c_in * c_out), _bn(c_out, hw_out))


def _fixed_costs(space: SearchSpace, resolution: int, num_classes: int) -> tuple[Cost, int, int]:
    """Cost of the stem and the first block; returns it with the width and size entering stage 1.

    Widths are timm's: the builder rounds the stem and every block's output to a multiple of 8, and
    the first block is whatever ``space.first_block`` says (its own kernel, stride, SE, output width),
    so stage 1's first layer takes that block's output, not ``stem_channels``.
    """
    size = _out(resolution, 2)
    c = make_divisible(space.stem_channels)
    total = _sum(Cost(3 * c * 9 * size * size, 3 * c * 9), _bn(c, size * size))
    fb = FixedBlock.parse(space.first_block)
    c_out = make_divisible(fb.out_channels)
    for i in range(fb.repeats):
        stride = fb.stride if i == 0 else 1
        block = (ir_cost(c, c_out, Op(fb.kernel, fb.expansion), stride, size, fb.se_ratio) if fb.kind == 'ir'
                 else ds_cost(c, c_out, fb.kernel, stride, size, fb.se_ratio))
        total, c, size = _sum(total, block), c_out, _out(size, stride)
    return total, c, size


def _tail_costs(space: SearchSpace, c_in: int, size: int, num_classes: int) -> Cost:
    hw = size * size
    c_last = make_divisible(space.last_channels)           # a block's width, rounded; the head's is not
    last = _sum(Cost(c_in * c_last * hw, c_in * c_last), _bn(c_last, hw))
    head = Cost(c_last * hw + c_last * space.head_channels,                                # pool, conv_head
                c_last * space.head_channels + space.head_channels)                       # + its bias
    classifier = Cost(space.head_channels * num_classes, space.head_channels * num_classes + num_classes)
    return _sum(last, head, classifier)


class CostTable:
    """MACs/params of every (layer slot, op) of a space at one resolution and class count.

    Columns are the space's ops in choice order plus a final all-zero column, so the ``-1`` that
    marks an absent layer in :meth:`Arch.encode` indexes zero cost with no special case.
    """

    def __init__(self, space: SearchSpace, resolution: int, num_classes: int = 1000) -> None:
        self.space, self.resolution, self.num_classes = space, resolution, num_classes
        n_ops = len(space.ops)
        self.macs = np.zeros((space.max_layers, n_ops + 1), dtype=np.int64)
        self.params = np.zeros_like(self.macs)
        # each slot's final BN (the one a multi-path layer shares among its branches)
        self.bn_macs = np.zeros(space.max_layers, dtype=np.int64)
        self.bn_params = np.zeros_like(self.bn_macs)
        fixed, c_in, size = _fixed_costs(space, resolution, num_classes)
        slot = 0
        for st in space.stages:
            c_out = make_divisible(st.out_channels)         # timm's builder rounds every block's width
            for i in range(st.max_depth):
                stride = st.stride if i == 0 else 1
                cin = c_in if i == 0 else c_out
                for j, op in enumerate(space.ops):
                    c = ir_cost(cin, c_out, op, stride, size, space.se_ratio)
                    self.macs[slot, j], self.params[slot, j] = c.macs, c.params
                bn = _bn(c_out, _out(size, stride) ** 2)
                self.bn_macs[slot], self.bn_params[slot] = bn.macs, bn.params
                if i == 0:
                    size = _out(size, stride)
                slot += 1
            c_in = c_out
        fixed = _sum(fixed, _tail_costs(space, c_in, size, num_classes))
        self.fixed_macs, self.fixed_params = fixed.macs, fixed.params
        self._rows = np.arange(space.max_layers)
        self._masks: dict[int | None, MaskCostTable] = {}

    def masks(self, max_paths: int | None = None) -> 'MaskCostTable':
        """The table of multi-path layers for bitmask codes (``max_paths`` only bounds :meth:`bounds`)."""
        if max_paths not in self._masks:
            self._masks[max_paths] = MaskCostTable(self, max_paths)
        return self._masks[max_paths]

    def macs_of(self, codes: np.ndarray) -> np.ndarray:
        """MACs of archs given as an ``(N, slots)`` int array from :meth:`Arch.encode` (or one row)."""
        return self._gather(self.macs, codes, self.fixed_macs)

    def params_of(self, codes: np.ndarray) -> np.ndarray:
        return self._gather(self.params, codes, self.fixed_params)

    def _gather(self, table: np.ndarray, codes: np.ndarray, fixed: int) -> np.ndarray:
        codes = np.asarray(codes)
        if codes.ndim == 1:
            return fixed + table[self._rows, codes].sum()
        total = np.full(codes.shape[0], fixed, dtype=np.int64)
        for slot in range(codes.shape[1]):        # one column at a time: no (N, slots) int64 temporary
            total += table[slot].take(codes[:, slot], mode='wrap')
        return total

    def bounds(self, depths: 'tuple[int, ...] | None' = None) -> tuple[int, int]:
        """True (min, max) MACs over archs with the given per-stage depths (None: any valid depth)."""
        lo = hi = self.fixed_macs
        slot = 0
        for s, st in enumerate(self.space.stages):
            ops = self.macs[slot:slot + st.max_depth, :-1]
            dmin, dmax = (st.min_depth, st.max_depth) if depths is None else (depths[s], depths[s])
            lo += int(ops[:dmin].min(axis=1).sum())
            hi += int(ops[:dmax].max(axis=1).sum())
            slot += st.max_depth
        return lo, hi


class MaskCostTable:
    """MACs/params of every (layer slot, op subset), for the bitmask codes of :meth:`Arch.encode_mask`.

    Column ``mask`` of a slot holds the cost of the layer running the ops whose bits are set
    (column 0, no op, is the absent layer and costs 0). Same interface as :class:`CostTable`, so
    samplers and the evolutionary search use either. ``max_paths`` caps the layer width that
    :meth:`bounds` considers.
    """

    def __init__(self, table: CostTable, max_paths: int | None = None) -> None:
        from ..errors import SpaceError
        sp = table.space
        n_ops = len(sp.ops)
        if n_ops > MAX_MASK_OPS:
            raise SpaceError(f'search space {sp.name} has {n_ops} ops; multi-path codes address at most {MAX_MASK_OPS}')
        self.space, self.resolution, self.num_classes = sp, table.resolution, table.num_classes
        self.max_paths = n_ops if max_paths is None else int(max_paths)
        self.fixed_macs, self.fixed_params = table.fixed_macs, table.fixed_params
        bits = (np.arange(2 ** n_ops)[:, None] >> np.arange(n_ops)) & 1          # (masks, ops)
        self.width = bits.sum(1)                                                  # ops per mask
        shared = np.maximum(self.width - 1, 0)                                    # final BNs merged into one
        self.macs = table.macs[:, :n_ops] @ bits.T - table.bn_macs[:, None] * shared
        self.params = table.params[:, :n_ops] @ bits.T - table.bn_params[:, None] * shared
        self._rows = table._rows

    macs_of = CostTable.macs_of
    params_of = CostTable.params_of
    _gather = CostTable._gather

    def bounds(self, depths: 'tuple[int, ...] | None' = None) -> tuple[int, int]:
        """True (min, max) MACs over archs of the given depths whose layers run 1..max_paths ops."""
        ok = (self.width >= 1) & (self.width <= self.max_paths)
        lo = hi = self.fixed_macs
        slot = 0
        for s, st in enumerate(self.space.stages):
            ops = self.macs[slot:slot + st.max_depth][:, ok]
            dmin, dmax = (st.min_depth, st.max_depth) if depths is None else (depths[s], depths[s])
            lo += int(ops[:dmin].min(axis=1).sum())
            hi += int(ops[:dmax].max(axis=1).sum())
            slot += st.max_depth
        return lo, hi


@lru_cache(maxsize=64)
def cost_table(space: SearchSpace, resolution: int, num_classes: int = 1000) -> CostTable:
    return CostTable(space, resolution, num_classes)

