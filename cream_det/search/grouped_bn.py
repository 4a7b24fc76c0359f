"""Several BatchNorm batches in one forward: each group of consecutive images normalised by its own statistics.

Cream's teacher selection scores every board entry by the student's predictions on that entry's
few stored images, in train mode, so that each entry's images are their own BatchNorm batch (the
authors' loop of one forward per entry, :mod:`.matching`). Ten forwards of 4 images use a core
worse than one forward of 40, a ``torch.func.vmap`` of the ten scaled badly with the feature maps
(issue 36: 1.4x a whole SPOS step at 224 px), and pooling the 40 images in one BatchNorm batch
changes every entry's predictions. Inside :func:`per_group_batch_norm` one forward of ``groups x n`` images gives what
``groups`` forwards of ``n`` images give: every ``torch.nn.functional.batch_norm`` call that
normalises by batch statistics (train mode, or a BatchNorm without running statistics) computes
the mean and the biased variance of each group of ``n`` consecutive images on its own. No other
layer of the networks this serves couples the images of a batch.

Running statistics are neither read nor updated by the grouped calls (the modules still count
``num_batches_tracked``): a caller that must leave a network's buffers untouched runs it on copies
of them, as the Cream selection does. Calls in eval mode (running statistics) pass through
unchanged: they do not couple the images of a batch. The context intercepts the functional call
(a ``TorchFunctionMode``), so it covers ``nn.BatchNorm2d`` and timm's ``BatchNormAct2d`` alike
without touching any module; ``SyncBatchNorm`` across several processes computes its statistics
outside that call and is refused.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

_LOW_PRECISION = (torch.float16, torch.bfloat16)
#: what SyncBatchNorm calls instead of ``F.batch_norm`` when it pools the images of several processes
_SYNC_STATS = (torch.batch_norm_stats, torch.batch_norm_gather_stats_with_counts)


def grouped_batch_norm(x: torch.Tensor, groups: int, weight: torch.Tensor | None = None,
                       bias: torch.Tensor | None = None, eps: float = 1e-5, native: bool | None = None) -> torch.Tensor:
    """Train-mode batch norm of ``x`` (``(groups * n, C, ...)``) with each group's own batch statistics.

    One group is PyTorch's own kernel without running statistics. Several, ``native`` (the default
    on the CPU): per group (a contiguous block of images), PyTorch's BatchNorm statistics kernel,
    then its inference kernel with those statistics, writing into that block of the output; on a
    CPU core the two cost about one ordinary BatchNorm, where ``torch.var_mean`` over the
    non-adjacent image and pixel dimensions alone is a Welford reduction several times slower.
    Otherwise (other devices) ``torch.var_mean`` and one affine map. Statistics in fp32 for
    half-precision inputs, the output in ``x``'s dtype and memory layout.
    """
    if groups == 1:
        return F.batch_norm(x, None, None, weight, bias, True, 0.0, eps)
    if x.shape[0] % groups:
        raise ValueError(f'per-group batch norm: {x.shape[0]} images do not split into {groups} equal groups')
    low = x.dtype in _LOW_PRECISION
    if native if native is not None else x.device.type == 'cpu':
        out = torch.empty_like(x)
        for block, block_out in zip(x.chunk(groups), out.chunk(groups)):
            mean, var = torch.batch_norm_update_stats(block.float() if low else block, None, None, 0.0)
            torch.ops.aten.native_batch_norm.out(block, weight, bias, mean, var, False, 0.0, eps, out=block_out,
                                                 save_mean=mean.new_empty(0), save_invstd=mean.new_empty(0))
        return out
    g = x.unflatten(0, (groups, x.shape[0] // groups))              # (groups, n, C, ...)
    var, mean = torch.var_mean(g.float() if low else g, dim=[1, *range(3, g.dim())], correction=0, keepdim=True)
    shape = (1, 1, -1) + (1,) * (g.dim() - 3)
    scale = torch.rsqrt(var + eps)
    if weight is not None:
        scale = scale * weight.view(shape)
    shift = -mean * scale
    if bias is not None:
        shift = shift + bias.view(shape)
    return torch.addcmul(shift, g, scale).to(x.dtype).flatten(0, 1)


class _PerGroupBatchNorm(TorchFunctionMode):
    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if func is F.batch_norm:
            return self._batch_norm(*args, **kwargs)
        if func in _SYNC_STATS:
            raise RuntimeError('per-group batch norm: SyncBatchNorm across processes pools every process\'s images; '
                               'run the per-group forward on a network with plain BatchNorm layers')
        return func(*args, **kwargs)

    def _batch_norm(self, input: torch.Tensor, running_mean: torch.Tensor | None, running_var: torch.Tensor | None,
                    weight: torch.Tensor | None = None, bias: torch.Tensor | None = None, training: bool = False,
                    momentum: float = 0.1, eps: float = 1e-5) -> torch.Tensor:
        if not training:            # running statistics: every image normalised alike, nothing to group
            return F.batch_norm(input, running_mean, running_var, weight, bias, False, momentum, eps)
        return grouped_batch_norm(input, self.groups, weight, bias, eps)


@contextmanager
def per_group_batch_norm(groups: int) -> Iterator[None]:
    """Within the context, train-mode BatchNorm treats each of ``groups`` equal runs of consecutive
    images as its own batch (see the module docstring)."""
    if groups < 1:
        raise ValueError(f'per-group batch norm: groups={groups} must be at least 1')
    with _PerGroupBatchNorm(groups):
        yield


__all__ = ['grouped_batch_norm', 'per_group_batch_norm']
