"""A NaN or inf loss stops the run (or, when asked, its step is skipped) before it reaches a weight.

mmdet's ``CheckInvalidLossHook`` looks at the loss *after* the optimizer step (the weights are NaN by
then), every 50 iterations, with an ``assert`` (gone under ``python -O``, and its message is
``logger.info``'s ``None``); a checkpoint saved in between holds the NaN weights, and it cannot skip.
:class:`FiniteLossHook` instead checks every loss at the optim wrapper's ``backward`` — the one call
every training step makes, mmengine's ``train_step``, the search strategies' and under
``AmpOptimWrapper`` alike — before gradients exist:

- ``on_nonfinite='stop'`` (default): one :class:`~cream_det.errors.TrainingError` naming the
  iteration, the loss, what the model says it was training (the search: the path) and the last
  intact checkpoint. No optimizer step ran on it, no checkpoint is written after it, and the board
  (updated after the step) never sees it.
- ``on_nonfinite='skip'``: the step is dropped (no backward, no optimizer step, gradients cleared,
  the model's buffers — BN statistics the NaN forward already moved — restored from before the step,
  a copy per step; the search strategy's board and history updates are skipped with it), a warning
  counts it, and
  ``max_consecutive_skips`` in a row stop the run as above (the weights themselves are then broken).

On several ranks the verdict is agreed with one all-reduce of a flag, so every rank stops or skips
the same step (a rank that skipped backward alone would hang DDP's gradient all-reduce). Each step
costs that one-element all-reduce and one host sync on the loss.

Independently, ``before_save_checkpoint`` refuses a checkpoint holding a non-finite float tensor
(weights, EMA, optimizer state, the search's board): a NaN that came another way (a strategy's own
optimizer, a BN statistic) is never written over a good checkpoint.

``tools/train.py``, ``tools/search.py`` and ``tools/retrain.py`` add the hook to every run (config
key ``nonfinite_loss='stop'|'skip'``); under mmdet's own ``tools/train.py`` the detection configs
list it in ``custom_hooks``.
"""
from __future__ import annotations

from typing import Any, Iterator, Mapping

import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ..errors import ConfigError, TrainingError
from ..utils import distributed as D
from .faults import last_checkpoint_note

MODES = ('stop', 'skip')


class _SkippedStep(Exception):
    """Raised by the guarded ``backward`` in skip mode; caught by the guarded ``train_step``."""


def _optim_wrappers(optim_wrapper: Any) -> list:
    from mmengine.optim import OptimWrapperDict
    return list(optim_wrapper.values()) if isinstance(optim_wrapper, OptimWrapperDict) else [optim_wrapper]


def nonfinite_tensors(obj: Any, prefix: str = '') -> Iterator[str]:
    """Keys (dotted) of the floating-point tensors in a nested dict/list holding NaN or inf."""
    if isinstance(obj, torch.Tensor):
        if obj.is_floating_point() and obj.numel() and not bool(torch.isfinite(obj).all()):
            yield prefix or '<tensor>'
    elif isinstance(obj, Mapping):
        for k, v in obj.items():
            yield from nonfinite_tensors(v, f'{prefix}.{k}' if prefix else str(k))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from nonfinite_tensors(v, f'{prefix}[{i}]')


@HOOKS.register_module()
class FiniteLossHook(Hook):
    """Stop (or skip the step) at the first NaN/inf loss; never save a non-finite checkpoint.

    Args:
        on_nonfinite: ``'stop'`` or ``'skip'``.
        max_consecutive_skips: in skip mode, this many non-finite losses in a row stop the run.
    """

    priority = 'VERY_LOW'          # before_save_checkpoint: after every hook that adds state to it

    def __init__(self, on_nonfinite: str = 'stop', max_consecutive_skips: int = 10) -> None:
        if on_nonfinite not in MODES:
            raise ConfigError(f"FiniteLossHook: on_nonfinite={on_nonfinite!r}; use one of {MODES} "
                              "(config key nonfinite_loss)")
        if int(max_consecutive_skips) < 1:
            raise ConfigError(f'FiniteLossHook: max_consecutive_skips={max_consecutive_skips} must be >= 1')
        self.on_nonfinite, self.max_consecutive_skips = on_nonfinite, int(max_consecutive_skips)
        self.skipped = 0                # skipped steps of this process's run (also logged per epoch)
        self._consecutive = 0
        self._epoch_skipped = 0
        self._runner: Any = None

    # ---- wiring: the optim wrapper's backward and the model's train_step, on this instance only ----------
    def before_train(self, runner: Any) -> None:
        self._runner = runner
        for ow in _optim_wrappers(runner.optim_wrapper):
            if not getattr(ow, '_cream_finite_guard', False):
                ow.backward = self._guard_backward(ow.backward)
                ow._cream_finite_guard = True
        model = runner.model
        if not getattr(model, '_cream_finite_guard', False):
            model.train_step = self._guard_train_step(model.train_step)
            model._cream_finite_guard = True

    def _guard_backward(self, backward: Any) -> Any:
        def guarded(loss: torch.Tensor, **kwargs: Any) -> Any:
            self._check(loss)
            return backward(loss, **kwargs)
        return guarded

    def _guard_train_step(self, train_step: Any) -> Any:
        def guarded(*args: Any, **kwargs: Any) -> Any:
            # the forward of a step that turns out non-finite has already moved BN's running statistics
            # (to NaN): in skip mode they are put back as they were before the step
            buffers = list(self._runner.model.buffers()) if self.on_nonfinite == 'skip' else []
            before = [b.detach().clone() for b in buffers]
            try:
                out = train_step(*args, **kwargs)
            except _SkippedStep as e:
                for ow in _optim_wrappers(self._runner.optim_wrapper):
                    ow.zero_grad()
                with torch.no_grad():
                    for b, v in zip(buffers, before):
                        b.copy_(v)
                return self._skipped(str(e))
            self._consecutive = 0
            return out
        return guarded

    # ---- the check -------------------------------------------------------------------------------------
    def _check(self, loss: torch.Tensor) -> None:
        bad = not bool(torch.isfinite(loss.detach()).all())
        if D.is_dist():             # every rank takes the same decision (DDP's backward is collective)
            import torch.distributed as dist
            flag = torch.tensor([float(bad)], device=loss.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            bad = bool(flag.item() > 0)
        if not bad:
            return
        value = loss.detach().float().flatten()
        what = f'the loss is {value[0].item() if value.numel() == 1 else value.tolist()}'
        if bool(torch.isfinite(value).all()):
            what = 'the loss is non-finite on another rank'
        if self.on_nonfinite == 'skip':
            raise _SkippedStep(what)
        raise TrainingError(self._where(what) + ': the run stopped before this step changed any weight, and '
                            f'nothing was saved after it; {last_checkpoint_note(self._runner.work_dir)} '
                            "(lower the lr, check the data; or skip such steps: nonfinite_loss='skip')")

    def _where(self, what: str) -> str:
        r = self._runner
        model = r.model.module if hasattr(r.model, 'module') else r.model
        doing = getattr(model, 'step_description', lambda: None)()
        return (f'iteration {r.iter + 1} (epoch {r.epoch + 1}): {what}' + (f', training {doing}' if doing else ''))

    def _skipped(self, what: str) -> dict:
        self.skipped += 1
        self._epoch_skipped += 1
        self._consecutive += 1
        if self._consecutive >= self.max_consecutive_skips:
            raise TrainingError(self._where(what) + f': {self._consecutive} non-finite losses in a row (skipped), '
                                'the weights themselves are likely broken; '
                                f'{last_checkpoint_note(self._runner.work_dir)}')
        self._runner.logger.warning(self._where(what) + f'; step skipped ({self.skipped} skipped so far)')
        return {}

    # ---- reporting and the last line of defence -------------------------------------------------------
    def after_train_epoch(self, runner: Any) -> None:
        if self._epoch_skipped:
            runner.logger.warning(f'epoch {runner.epoch + 1}: {self._epoch_skipped} step(s) skipped for a non-finite '
                                  f'loss ({self.skipped} in this run)')
            self._epoch_skipped = 0

    def before_save_checkpoint(self, runner: Any, checkpoint: dict) -> None:
        bad = list(nonfinite_tensors({k: v for k, v in checkpoint.items() if k != 'message_hub'}))
        if bad:
            more = f' and {len(bad) - 1} more' if len(bad) > 1 else ''
            raise TrainingError(f'iteration {runner.iter} (epoch {runner.epoch}): refusing to save a checkpoint with '
                                f'NaN/inf in {bad[0]}{more}; {last_checkpoint_note(runner.work_dir)}')


def add_finite_loss_hook(cfg: Any) -> Any:
    """Every run of our tools gets a :class:`FiniteLossHook` (``nonfinite_loss`` sets its mode)."""
    hooks = [dict(h) for h in (cfg.get('custom_hooks') or [])]
    mine = [h for h in hooks if h.get('type') in ('FiniteLossHook', FiniteLossHook)]
    if not mine:
        hooks.append(dict(type='FiniteLossHook'))
        mine = hooks[-1:]
    mode = cfg.get('nonfinite_loss')
    if mode is not None:
        if mode not in MODES:
            raise ConfigError(f'nonfinite_loss={mode!r}: use one of {MODES}')
        mine[0]['on_nonfinite'] = mode
    cfg.custom_hooks = hooks
    return cfg


__all__ = ['FiniteLossHook', 'add_finite_loss_hook', 'nonfinite_tensors']
