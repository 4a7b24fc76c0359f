"""timm's learning-rate schedules as mmengine schedulers: the authors' retraining schedule, exactly.

The authors retrain with timm 0.1.20's ``create_scheduler`` (``Cream/tools/retrain.py:237``):
``StepLRScheduler`` for Cream-14/43 (``SCHED: 'step'``) and ``CosineLRScheduler`` for the others
(``SCHED: 'cosine'``), stepped once per epoch (``t_in_epochs=True``: ``lr_scheduler.step(epoch + 1)``
at ``retrain.py:289``; the per-update call ``step_update`` returns nothing). Epoch ``t`` of those
schedules trains at (``timm/scheduler/{step_lr,cosine_lr}.py`` ``_get_lr``, 0.1.20 and 1.0.31 alike):

- ``t < warmup_t``: ``warmup_lr_init + t * (base - warmup_lr_init) / warmup_t`` — the warm-up
  *replaces* the schedule (it does not multiply it) and stops one step short of ``base``;
- step: ``base * decay_rate ** (t // decay_t)``, ``t`` counted from 0 through the warm-up;
- cosine: ``lr_min + (base - lr_min) / 2 * (1 + cos(pi * t / t_initial))`` for ``t < t_initial``,
  ``t`` again counted from 0 through the warm-up, then ``lr_min`` for every later epoch (the
  cool-down that ``create_scheduler`` adds as ``cooldown_epochs`` to the epoch count).

mmengine's own schedulers cannot give these values: they are chainable (each one rescales whatever
the previous one left in ``lr``), ``LinearLR`` reaches its end factor on its last step while timm's
warm-up ends at ``(warmup_t - 1) / warmup_t`` of the way and then jumps, ``CosineAnnealingLR``
counts its phase from its own ``begin`` where timm's counts from epoch 0, and after ``end`` it keeps
its last value instead of ``lr_min``. So :class:`TimmStepLR` and :class:`TimmCosineLR` compute timm's
closed form from the base lr and the step count (which also makes resuming exact: the count is in
the scheduler's state). Each one is the whole schedule; use it alone.

With ``convert_to_iter_based=True`` every length (``warmup_t``, ``decay_t``, ``t_initial``) is
multiplied by the iterations per epoch, as timm 1.0's ``create_scheduler`` does with
``sched_on_updates=True``: the per-iteration variant, not what the authors ran.
"""
from __future__ import annotations

import math
from typing import Any

from mmengine.optim.scheduler.lr_scheduler import LRSchedulerMixin
from mmengine.optim.scheduler.param_scheduler import INF, _ParamScheduler
from mmengine.registry import PARAM_SCHEDULERS

from ..errors import ConfigError


class _TimmParamScheduler(_ParamScheduler):
    """timm's warm-up in front of a closed-form schedule of the step count from ``begin``."""

    _lengths: tuple[str, ...] = ('warmup_t',)      # lengths in steps, scaled by build_iter_from_epoch

    def __init__(self, optimizer: Any, param_name: str, *, warmup_t: float = 0, warmup_lr_init: float = 0.0,
                 begin: int = 0, end: int = INF, last_step: int = -1, by_epoch: bool = True,
                 verbose: bool = False) -> None:
        if warmup_t < 0 or warmup_lr_init < 0:
            raise ConfigError(f'{type(self).__name__}: warmup_t={warmup_t} and warmup_lr_init={warmup_lr_init} '
                              f'must be >= 0')
        self.warmup_t = warmup_t
        self.warmup_lr_init = warmup_lr_init
        super().__init__(optimizer, param_name, begin=begin, end=end, last_step=last_step, by_epoch=by_epoch,
                         verbose=verbose)

    @classmethod
    def build_iter_from_epoch(cls, *args: Any, begin: float = 0, end: float = INF, by_epoch: bool = True,
                              epoch_length: int | None = None, **kwargs: Any) -> '_TimmParamScheduler':
        """Every length times the iterations per epoch (timm's ``sched_on_updates=True``)."""
        if not by_epoch or not epoch_length:
            raise ConfigError(f'{cls.__name__}: convert_to_iter_based needs by_epoch=True and a train loop')
        for key in cls._lengths:
            if key in kwargs:
                kwargs[key] = kwargs[key] * epoch_length
        return cls(*args, begin=int(begin * epoch_length), end=end if end == INF else int(end * epoch_length),
                   by_epoch=False, **kwargs)

    def _get_value(self) -> list[float]:
        t = self.last_step
        if t < self.warmup_t:           # timm: warmup_steps = (v - warmup_lr_init) / warmup_t
            return [self.warmup_lr_init + t * ((base - self.warmup_lr_init) / self.warmup_t)
                    for base in self.base_values]
        return [self._decayed(t, base) for base in self.base_values]

    def _decayed(self, t: int, base: float) -> float:
        raise NotImplementedError


@PARAM_SCHEDULERS.register_module()
class TimmStepLR(LRSchedulerMixin, _TimmParamScheduler):
    """timm's ``StepLRScheduler`` (``warmup_prefix=False``): ``base * decay_rate ** (t // decay_t)``.

    ``decay_t`` may be fractional (2.4 epochs); ``t // decay_t`` is Python's float floor division,
    as in timm, so the decay lands on epochs 3, 5, 8, 10, 12, ... for 2.4.
    """

    _lengths = ('warmup_t', 'decay_t')

    def __init__(self, optimizer: Any, decay_t: float, decay_rate: float = 1.0, **kwargs: Any) -> None:
        if decay_t <= 0:
            raise ConfigError(f'TimmStepLR: decay_t={decay_t} must be > 0')
        self.decay_t = decay_t
        self.decay_rate = decay_rate
        super().__init__(optimizer, **kwargs)

    def _decayed(self, t: int, base: float) -> float:
        return base * (self.decay_rate ** (t // self.decay_t))


@PARAM_SCHEDULERS.register_module()
class TimmCosineLR(LRSchedulerMixin, _TimmParamScheduler):
    """timm's ``CosineLRScheduler`` with one cycle (``cycle_limit=1``, ``warmup_prefix=False``):
    cosine from ``base`` towards ``lr_min`` over ``t_initial`` steps counted from 0 (the warm-up
    included), then ``lr_min`` — the cool-down epochs that ``create_scheduler`` appends.
    """

    _lengths = ('warmup_t', 't_initial')

    def __init__(self, optimizer: Any, t_initial: float, lr_min: float = 0.0, **kwargs: Any) -> None:
        if t_initial <= 0 or lr_min < 0:
            raise ConfigError(f'TimmCosineLR: t_initial={t_initial} must be > 0 and lr_min={lr_min} >= 0')
        self.t_initial = t_initial
        self.lr_min = lr_min
        super().__init__(optimizer, **kwargs)

    def _decayed(self, t: int, base: float) -> float:
        if t >= self.t_initial:         # past the one cycle: the cool-down
            return self.lr_min
        return self.lr_min + 0.5 * (base - self.lr_min) * (1 + math.cos(math.pi * t / self.t_initial))


__all__ = ['TimmCosineLR', 'TimmStepLR']
