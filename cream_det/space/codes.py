"""How a path is written as an integer vector, one slot per layer of the space.

Two kinds: single-path codes (:meth:`Arch.encode`: an op index per layer, -1 = absent, int8) and
MixPath's multi-path codes (:meth:`Arch.encode_mask`: an op-set bitmask per layer, 0 = absent,
int32, layers of 1..``max_paths`` ops). A :class:`PathCodes` answers every question whose answer
depends on the kind — the absent value and dtype, the cost table that prices the codes (and so an
arch's MACs, :func:`arch_cost`), which MACs ranges its archs can meet (:meth:`PathCodes.macs_limit`),
how to read a code, how to draw layers, which supernet runs such paths (:attr:`PathCodes.supernet`)
— so the sampler (which owns one), the evolutionary searches, :class:`Arch` and the supernets ask it
instead of branching on ``max_paths``.

This module sits below :mod:`.arch`: it reads an arch only through what every arch has (``space``,
``resolution``, ``num_classes``, ``is_multipath``, ``max_paths``, ``encode``/``encode_mask``) and
turns a code into layers, from which :meth:`Arch.from_code` builds the arch.
"""
from __future__ import annotations

from typing import Any, Sequence, Union

import numpy as np

from ..errors import SpaceError
from .budget import Limit, macs_limit
from .flops import Cost, cost_table
from .spec import Op, SearchSpace

#: the supernet kinds (:attr:`PathCodes.supernet`); ``cream_det.models.supernet_kinds`` maps each to its class
SINGLE_PATH, MULTI_PATH = 'single_path', 'mixpath'
#: a decoded layer: one op, or (multi-path) several distinct ops in the space's choice order
Layer = Union[Op, tuple[Op, ...]]


def check_max_paths(space: SearchSpace, max_paths: int | None) -> int | None:
    """``None`` (single path) or a layer width ``1 <= m <= len(space.ops)``; else one clear error."""
    if max_paths is None:
        return None
    n = len(space.ops)
    if isinstance(max_paths, bool) or not isinstance(max_paths, (int, np.integer)) or max_paths < 1:
        raise SpaceError(f'max_paths={max_paths!r}: the most ops a layer runs at once must be an integer >= 1')
    if max_paths > n:
        raise SpaceError(f'max_paths={max_paths} is larger than the {n} ops of search space {space.name} '
                         f'({", ".join(o.name for o in space.ops)}): a layer cannot run more distinct ops '
                         f'than it has; use max_paths <= {n}')
    return int(max_paths)


class PathCodes:
    """The code kind of ``space``'s paths: single-path (``max_paths=None``) or multi-path (``m``)."""

    def __init__(self, space: SearchSpace, max_paths: int | None = None) -> None:
        self.space = space
        self.max_paths = check_max_paths(space, max_paths)
        self.multipath = self.max_paths is not None
        #: what an absent layer is in a code, and the codes' dtype
        self.absent, self.dtype = (0, np.int32) if self.multipath else (-1, np.int8)
        #: the kind of supernet that runs these paths (the space cannot import models: it names it)
        self.supernet = MULTI_PATH if self.multipath else SINGLE_PATH

    @classmethod
    def of(cls, arch: Any) -> 'PathCodes':
        """The codes ``arch`` is written in: multi-path (up to its widest layer) when a layer runs several ops."""
        return cls(arch.space, arch.max_paths if arch.is_multipath else None)

    def __repr__(self) -> str:
        kind = f'multi-path, up to {self.max_paths} ops per layer' if self.multipath else 'single-path'
        return f'PathCodes({self.space.name}, {kind})'

    # ---- costs and (de)coding -------------------------------------------------------------------
    def cost_table(self, resolution: int, num_classes: int = 1000):
        """The table that prices these codes (``macs_of``, ``bounds``) at ``resolution``."""
        table = cost_table(self.space, resolution, num_classes)
        return table.masks(self.max_paths) if self.multipath else table

    def cost(self, arch: Any) -> Cost:
        """``arch``'s exact MACs and parameters, priced from its code by this kind's table."""
        table = self.cost_table(arch.resolution, arch.num_classes)
        code = self.encode(arch)
        return Cost(int(table.macs_of(code)), int(table.params_of(code)))

    def macs_limit(self, macs_range: Sequence[float], resolution: int, num_classes: int = 1000,
                   depths: tuple[int, ...] | None = None) -> Limit:
        """The checked MACs limit of these codes at ``resolution``: one clear error naming the true bounds
        when no arch of this kind (of ``depths``, when given) has MACs inside the range
        (:func:`.budget.check_range`, the one check of a range, MACs or latency)."""
        archs = (f'archs of search space {self.space.name} at resolution {resolution}'
                 + (f' with depths {depths}' if depths else '')
                 + (f' and up to {self.max_paths} ops per layer' if self.max_paths else ''))
        return macs_limit(self.cost_table(resolution, num_classes), macs_range, archs, depths)

    def layers(self, code: Sequence[int]) -> tuple[tuple[Layer, ...], ...]:
        """The stages a code writes, layer by layer (absent slots skipped; a one-op mask is that op)."""
        sp, stages, off = self.space, [], 0
        for st in sp.stages:
            seg = (int(c) for c in code[off:off + st.max_depth])
            if self.multipath:
                sets = (tuple(op for j, op in enumerate(sp.ops) if c >> j & 1) for c in seg if c > 0)
                stages.append(tuple(ops[0] if len(ops) == 1 else ops for ops in sets))
            else:
                stages.append(tuple(sp.ops[c] for c in seg if c >= 0))
            off += st.max_depth
        return tuple(stages)

    def encode(self, arch: Any) -> np.ndarray:
        return arch.encode_mask() if self.multipath else arch.encode()

    def check_probs(self, probs: np.ndarray) -> None:
        """Refuse op probabilities a layer of this kind cannot draw from (too few non-zero for ``m`` ops)."""
        if self.multipath and self.max_paths > int((probs > 0).sum()):
            raise SpaceError(f'max_paths={self.max_paths} but op_probs gives only {int((probs > 0).sum())} ops a '
                             f'non-zero probability: a layer could not draw that many distinct ops')

    # ---- drawing layers -------------------------------------------------------------------------
    def draw_layers(self, rng: np.random.Generator, shape: tuple[int, ...],
                    probs: np.ndarray | None) -> np.ndarray:
        """Random layer values of ``shape``: an op each (``probs`` or uniform), or an op set of width
        k ~ U{1..m} each (:meth:`masks_of_width`)."""
        if not self.multipath:
            return rng.choice(len(self.space.ops), size=shape, p=probs).astype(np.int8)
        k = rng.integers(1, self.max_paths + 1, size=shape)
        return self.masks_of_width(rng, k, probs)

    def random_layers(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` uniformly drawn layer values, e.g. for mutations."""
        if not self.multipath:
            return rng.integers(len(self.space.ops), size=n)
        return self.draw_layers(rng, (n,), None)

    def masks_of_width(self, rng: np.random.Generator, k: np.ndarray, probs: np.ndarray | None) -> np.ndarray:
        """Op-set bitmasks of ``k`` distinct ops each (``k`` an int array).

        The k ops are the k largest of one random key per op: uniform keys give a uniform k-subset;
        keys ``u ** (1 / p)`` give weighted sampling without replacement (Efraimidis–Spirakis).
        """
        n_ops, shape = len(self.space.ops), k.shape
        keys = rng.random(shape + (n_ops,))
        if probs is not None:
            with np.errstate(divide='ignore'):
                keys = keys ** (1.0 / probs)            # p = 0: key 0, never among the k largest
        rank = np.argsort(np.argsort(-keys, axis=-1), axis=-1)     # 0 = largest key
        chosen = rank < k[..., None]
        bits = chosen.astype(np.int32) << np.arange(n_ops, dtype=np.int32)
        return bits.sum(-1, dtype=np.int32)

    def widths(self, codes: np.ndarray) -> np.ndarray:
        """Ops per layer of each code slot (0 for an absent layer)."""
        if not self.multipath:
            return (codes != self.absent).astype(np.int64)
        width = np.zeros(codes.shape, dtype=np.int64)
        for j in range(len(self.space.ops)):
            width += (codes >> j) & 1
        return width


def arch_cost(arch: Any) -> Cost:
    """An arch's exact MACs and parameters, priced by the table of its own kind of code."""
    return PathCodes.of(arch).cost(arch)


__all__ = ['Layer', 'MULTI_PATH', 'PathCodes', 'SINGLE_PATH', 'arch_cost', 'check_max_paths']
