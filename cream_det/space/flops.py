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
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .arch import Arch
from .spec import Op, SearchSpace


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


def _fixed_costs(space: SearchSpace, resolution: int, num_classes: int) -> tuple[Cost, int, int]:
    """Cost of the stem and the first block; returns it with the width and size entering stage 1."""
    s1 = _out(resolution, 2)
    c = space.stem_channels
    stem = _sum(Cost(3 * c * 9 * s1 * s1, 3 * c * 9), _bn(c, s1 * s1))
    # first block: depthwise-separable 'ds_r1_k3_s1_e1_c{c}' with SE from its input width
    ds = _sum(Cost(c * 9 * s1 * s1, c * 9), _bn(c, s1 * s1), _se(c, s1 * s1, space.se_ratio),
              Cost(c * c * s1 * s1, c * c), _bn(c, s1 * s1))
    return _sum(stem, ds), c, s1


def _tail_costs(space: SearchSpace, c_in: int, size: int, num_classes: int) -> Cost:
    hw = size * size
    last = _sum(Cost(c_in * space.last_channels * hw, c_in * space.last_channels), _bn(space.last_channels, hw))
    head = Cost(space.last_channels * hw + space.last_channels * space.head_channels,      # pool, conv_head
                space.last_channels * space.head_channels + space.head_channels)          # + its bias
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
        fixed, c_in, size = _fixed_costs(space, resolution, num_classes)
        slot = 0
        for st in space.stages:
            for i in range(st.max_depth):
                stride = st.stride if i == 0 else 1
                cin = c_in if i == 0 else st.out_channels
                for j, op in enumerate(space.ops):
                    c = ir_cost(cin, st.out_channels, op, stride, size, space.se_ratio)
                    self.macs[slot, j], self.params[slot, j] = c.macs, c.params
                if i == 0:
                    size = _out(size, stride)
                slot += 1
            c_in = st.out_channels
        fixed = _sum(fixed, _tail_costs(space, c_in, size, num_classes))
        self.fixed_macs, self.fixed_params = fixed.macs, fixed.params
        self._rows = np.arange(space.max_layers)

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


@lru_cache(maxsize=64)
def cost_table(space: SearchSpace, resolution: int, num_classes: int = 1000) -> CostTable:
    return CostTable(space, resolution, num_classes)


def arch_cost(arch: Arch) -> Cost:
    t = cost_table(arch.space, arch.resolution, arch.num_classes)
    code = arch.encode()
    return Cost(int(t.macs_of(code)), int(t.params_of(code)))
