"""An optimizer constructor whose step costs what the trained path costs, not what the supernet holds.

mmengine's ``DefaultOptimWrapperConstructor`` turns any ``paramwise_cfg`` (the search configs'
``norm_decay_mult=0, bias_decay_mult=0``) into one parameter group *per parameter*: ~1,600
groups for the 0-600M supernet, of which a single-path step touches ~280. torch's SGD then walks
every group on every ``step`` (``_init_group`` + one ``sgd`` call each, also for the groups whose
gradient is ``None``, which it skips) and, with one tensor per group, can never use its
multi-tensor (``foreach``) kernels: on a GPU that is hundreds of small launches per step.

:class:`GroupedOptimWrapperConstructor` builds exactly what the default constructor builds and
then merges the groups whose hyper-parameters are all equal (two groups for the search configs:
with and without weight decay), keeping parameter order. Every parameter sees the same update as
before (same lr, momentum, Nesterov, decay; parameters without a gradient are still skipped, so
momentum and decay still touch only the path's weights); only the number of Python-level passes
and kernel launches changes. Schedulers scale every group alike, so they are unaffected.
Optimizer states saved with per-parameter groups do not load into merged ones (torch checks the
group count): a search started before this constructor resumes with
``optim_wrapper.constructor='DefaultOptimWrapperConstructor'``.
"""
from __future__ import annotations

from typing import Any

import torch.nn as nn
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapper
from mmengine.registry import OPTIM_WRAPPER_CONSTRUCTORS


def merge_param_groups(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Groups with identical hyper-parameters joined into one (first-seen order, parameter order kept)."""
    merged: dict[tuple, dict[str, Any]] = {}
    for g in groups:
        key = tuple(sorted((k, repr(v)) for k, v in g.items() if k != 'params'))
        if key in merged:
            merged[key]['params'].extend(g['params'])
        else:
            merged[key] = {**g, 'params': list(g['params'])}
    return list(merged.values())


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class GroupedOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """mmengine's default constructor, with parameter groups of equal settings merged (see module doc)."""

    def __call__(self, model: nn.Module) -> OptimWrapper:
        wrapper = super().__call__(model)
        opt = wrapper.optimizer
        if opt.state:
            return wrapper                     # never regroup an optimizer that already holds state
        opt.param_groups = merge_param_groups(opt.param_groups)
        return wrapper


__all__ = ['GroupedOptimWrapperConstructor', 'merge_param_groups']
