"""Test-only hooks that make a loss non-finite at a chosen iteration (tests/test_faults.py), importable
by a config's ``custom_imports`` so that mmdet's own tools/train.py can use them too."""
import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module(force=True)
class PoisonBatchHook(Hook):
    """Fills the (float) inputs of the batches of the given 0-based iterations with NaN (on ``rank`` only,
    when given: the other ranks' losses stay finite)."""
    priority = 'HIGHEST'

    def __init__(self, iters=(7,), rank=None):
        self.iters, self.rank = set(iters), rank

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        from mmengine.dist import get_rank
        if runner.iter in self.iters and self.rank in (None, get_rank()):
            data_batch['inputs'].fill_(float('nan'))


@HOOKS.register_module(force=True)
class PoisonWeightHook(Hook):
    """Sets the model's last parameter to NaN before the given 0-based iteration (any model, any data)."""
    priority = 'HIGHEST'

    def __init__(self, at=11):
        self.at = at

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter == self.at:
            with torch.no_grad():
                list(runner.model.parameters())[-1].fill_(float('nan'))
