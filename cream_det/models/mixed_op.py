"""The multi-path (MixPath) layer: several inverted-residual branches on one input, summed.

Where the sum and the BN sit — as in the MixPath authors' supernet (``S1/model_search.py``,
``Inverted_Bottleneck``): each branch keeps its own BNs inside (after the expansion and the
depthwise conv), the branches' outputs are summed *after their linear 1x1 projection and before
any BN*, one BN normalises the sum, and the residual is added once, after that BN::

    branch(op, x) = conv_pwl(SE(act(BN(conv_dw(act(BN(conv_pw(x))))))))     (no BN of its own after)
    layer(x)      = drop_path(BN_k(branch(a, x) + branch(b, x) + ...)) + x   (+ x only with a skip)

(In the authors' S1 space the ops of a layer differ only in the depthwise kernel, so their
branches share the 1x1 expansion and projection of an expansion rate and are summed just before
that linear projection. Here the ops differ in expansion too, so each op is a whole timm
inverted-residual branch with its own projection, and the projections' outputs are summed: as
there, only linear maps lie between the branches' last activations and the one BN, and the
residual comes after that BN.) The sum of k branches has roughly
k times the variance of one, so in the supernet that BN is a :class:`ShadowBatchNorm`: one BN per
k in 1..m, the one matching the number of active branches normalises. A stand-alone subnet has a
fixed k per layer and one plain BN.

A branch is a timm ``InvertedResidual`` built by timm's builder from its block string, with its
final BN and residual taken out (they belong to the layer): nothing of timm is re-implemented, and
a one-branch layer with its BN put back is exactly the timm block — which is how single-op layers
of a multi-path arch are built in the subnet (the plain timm block, ``bn3`` = the supernet's
``ShadowBatchNorm`` for k = 1).
"""
from __future__ import annotations

import copy
from typing import Sequence

import torch
import torch.nn as nn


class ShadowBatchNorm(nn.Module):
    """One BatchNorm per number of active paths k = 1..max_paths; ``forward(x, k)`` uses the k-th.

    Each BN sees only sums of k paths, so its running statistics (and affine parameters) are
    those of such sums; the others are untouched by the step.
    """

    def __init__(self, template: nn.Module, max_paths: int) -> None:
        super().__init__()
        if max_paths < 1:
            raise ValueError(f'ShadowBatchNorm needs max_paths >= 1, got {max_paths}')
        self.bns = nn.ModuleList([fresh_bn(template) for _ in range(max_paths)])

    @property
    def max_paths(self) -> int:
        return len(self.bns)

    def forward(self, x: torch.Tensor, num_paths: int) -> torch.Tensor:
        if not 1 <= num_paths <= len(self.bns):
            raise ValueError(f'{num_paths} active paths, this ShadowBatchNorm has BNs for 1..{len(self.bns)}')
        return self.bns[num_paths - 1](x)


class MixedOpBlock(nn.Module):
    """A multi-path layer: ``Σ branches(x)`` → BN (shadow BN in the supernet) → ``+ x`` when it has a skip.

    Args:
        blocks: timm ``InvertedResidual`` blocks of the ops, same input/output width and stride
            (their final BN, residual and drop path are removed here; the branches keep the rest).
        max_paths: ``None`` for a stand-alone layer (one BN, every branch active); ``m`` for a
            supernet layer (a :class:`ShadowBatchNorm` of m BNs; ``forward`` takes the active set).
        drop_path: stochastic depth on the normalised sum (the subnet's per-block rate).
    """

    def __init__(self, blocks: Sequence[nn.Module], max_paths: int | None = None,
                 drop_path: nn.Module | None = None) -> None:
        super().__init__()
        if not blocks:
            raise ValueError('MixedOpBlock needs at least one branch')
        first = blocks[0]
        self.has_skip = bool(first.has_skip)
        template = first.bn3
        self.bn = fresh_bn(template) if max_paths is None else ShadowBatchNorm(template, max_paths)
        self.branches = nn.ModuleList([strip_branch(b) for b in blocks])
        self.drop_path = drop_path if drop_path is not None else nn.Identity()

    @property
    def shadow(self) -> bool:
        return isinstance(self.bn, ShadowBatchNorm)

    def branch_sum(self, x: torch.Tensor, active: Sequence[int] | None = None) -> torch.Tensor:
        """Sum of the active branches' outputs before the BN (in the given order: float sums are ordered)."""
        out = None
        for j in (range(len(self.branches)) if active is None else active):
            y = self.branches[j](x)
            out = y if out is None else out + y
        if out is None:
            raise ValueError('MixedOpBlock: no active branch')
        return out

    def forward(self, x: torch.Tensor, active: Sequence[int] | None = None) -> torch.Tensor:
        out = self.branch_sum(x, active)
        k = len(self.branches) if active is None else len(active)
        out = self.bn(out, k) if self.shadow else self.bn(out)
        if self.has_skip:
            out = self.drop_path(out) + x
        return out

    def extra_repr(self) -> str:
        bn = f'shadow BN x{self.bn.max_paths}' if self.shadow else 'one BN'
        return f'branches={len(self.branches)}, {bn}, skip={self.has_skip}'


def strip_branch(block: nn.Module) -> nn.Module:
    """A timm ``InvertedResidual`` without its final BN, residual and drop path: a branch's raw output."""
    for name in ('bn3', 'has_skip', 'drop_path', 'conv_pwl'):
        if not hasattr(block, name):
            raise TypeError(f'{type(block).__name__} is not a timm InvertedResidual (no {name})')
    block.bn3 = nn.Identity()
    block.drop_path = nn.Identity()
    block.has_skip = False
    return block


def fresh_bn(template: nn.Module) -> nn.Module:
    """A new BN of the template's kind and width (timm's ``BatchNormAct2d`` stays one), freshly initialised."""
    bn = copy.deepcopy(template)
    bn.reset_parameters()
    return bn


__all__ = ['MixedOpBlock', 'ShadowBatchNorm', 'strip_branch', 'fresh_bn']
