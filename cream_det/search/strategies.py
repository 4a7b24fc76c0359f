"""Search strategies: what one training iteration of a weight-sharing supernet does.

Every strategy implements the same small interface, so the engine (``cream_det.engine.supernet_search``)
runs any of them with the same data pipeline, logging, checkpoints, resume and distributed launch:

- ``train_step(ctx) -> log dict``: one iteration, given a :class:`StepContext`;
- ``state_dict()`` / ``load_state_dict()``: everything needed to resume exactly;
- ``ranked_candidates()``: the strategy's own ranking of final architectures (Cream: its board),
  or ``None`` when the final pick needs an evolutionary search over the trained supernet (SPOS);
- optionally ``trainable_modules()`` (modules trained beside the supernet: the model registers them,
  so they are in the optimizer, DDP and checkpoints), ``forward(model, inputs, path)`` (the
  strategy's own computation, reached through the model with ``ctx.forward(x, path, mode='strategy')``
  so DDP synchronises it), and ``final_pick`` + ``final_search(...)`` (the strategy's own way of
  picking the final arch after training, e.g. DNA's exact combination search).
- ``supernet_args(cfg)`` (class method): what the strategy needs of the supernet it trains
  (MixPath: ``max_paths``), so one config entry decides both.

Strategies that train the supernet differently (block-wise distillation as in DNA, several paths
per layer as in MixPath) plug in here as further classes registered in :data:`STRATEGIES`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..space import ArchSampler
from ..utils import distributed as D

STRATEGIES: dict[str, type['SearchStrategy']] = {}


def register(cls: type['SearchStrategy']) -> type['SearchStrategy']:
    STRATEGIES[cls.name] = cls
    return cls


def strategy_class(cfg: dict[str, Any]) -> type['SearchStrategy']:
    kind = cfg.get('type')
    if kind not in STRATEGIES:
        raise ConfigError(f"model.strategy.type={kind!r}: choose one of {', '.join(sorted(STRATEGIES))}")
    return STRATEGIES[kind]


def supernet_args(cfg: dict[str, Any]) -> dict[str, Any]:
    """Supernet constructor arguments implied by a strategy config (e.g. MixPath's ``max_paths``)."""
    return strategy_class(cfg).supernet_args(cfg)


def build_strategy(cfg: dict[str, Any], supernet: torch.nn.Module, macs_range: tuple[float, float] | None,
                   seed: int) -> 'SearchStrategy':
    cls = strategy_class(cfg)
    cfg = dict(cfg)
    cfg.pop('type')
    try:
        return cls(supernet, macs_range=macs_range, seed=seed, **cfg)
    except TypeError as e:
        raise ConfigError(f'model.strategy ({cls.name}): {e}') from None


@dataclass
class StepContext:
    """What a strategy may use in one iteration.

    ``forward(x, code)`` runs the supernet *through its DDP wrapper* when there is one (so gradients
    are synchronised); ``forward(x, code, mode='strategy')`` runs the strategy's own ``forward`` the
    same way; ``supernet`` is the bare module for gradient-free or functional forwards.
    """

    supernet: torch.nn.Module
    forward: Callable[[torch.Tensor, Any], torch.Tensor]
    optim_wrapper: Any                  # mmengine OptimWrapper (duck-typed: update_params, get_lr)
    inputs: torch.Tensor
    labels: torch.Tensor
    step: int                           # global iteration, 0-based
    epoch: int = 0                      # current epoch, 0-based (epoch-based loops)
    batch_idx: int | None = None        # iteration within the epoch, 0-based (None: not epoch-based)
    max_iters: int | None = None        # iterations of the whole search (None: not known)


def checked_label_smoothing(strategy: str, value: float) -> float:
    """A strategy's ``label_smoothing`` argument, refused outside [0, 1) with a ConfigError."""
    if not 0.0 <= value < 1.0:
        raise ConfigError(f'{strategy} label_smoothing={value}: must be in [0, 1)')
    return float(value)


def top1(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return float((logits.argmax(1) == labels).float().mean() * 100)


class SearchStrategy:
    name = ''

    def __init__(self, supernet: torch.nn.Module, *, macs_range: tuple[float, float] | None, seed: int,
                 op_probs: Sequence[float] | None = None, constrain_macs: bool = False,
                 history_size: int = 20000) -> None:
        """
        Args:
            op_probs: per-op sampling probabilities in choice order (``None``: uniform).
            constrain_macs: reject paths outside ``macs_range`` (the authors train on all paths and
                use the range only for the final pick).
        """
        sp = supernet.space
        # the supernet's kind decides the codes: op indices, or op-set masks for a MixPath supernet
        self.sampler = ArchSampler(sp, supernet.resolution, supernet.num_classes, depths=supernet.depths,
                                   op_probs=op_probs, macs_range=macs_range if constrain_macs else None, seed=seed,
                                   max_paths=getattr(supernet, 'max_paths', None))
        self.macs_range = macs_range
        self.history: list[tuple[int, int, float]] = []      # (step, macs, acc) of every trained path
        self.history_size = history_size

    # ---- helpers shared by strategies -------------------------------------------------------------
    def sample(self, device: torch.device) -> tuple[int, ...]:
        """A path drawn on rank 0 and broadcast, so every rank trains the same one."""
        code = torch.as_tensor(self.sampler.sample_codes(1)[0].astype(np.int64), device=device)
        return tuple(int(c) for c in D.broadcast_(code).tolist())

    def macs_of(self, code: Sequence[int]) -> int:
        return int(self.sampler.table.macs_of(np.asarray(code)))

    def record(self, step: int, macs: int, acc: float) -> None:
        self.history.append((int(step), int(macs), float(acc)))
        del self.history[:-self.history_size]

    # ---- interface ----------------------------------------------------------------------------------
    @classmethod
    def supernet_args(cls, cfg: dict[str, Any]) -> dict[str, Any]:
        """Supernet constructor arguments this strategy's config implies (none: the single-path supernet)."""
        return {}

    def train_step(self, ctx: StepContext) -> dict[str, float]:
        raise NotImplementedError

    def ranked_candidates(self) -> list[tuple[int, ...]] | None:
        return None

    #: the ``final_pick`` name under which :meth:`final_search` runs (``None``: the strategy has none)
    final_pick: str | None = None

    def final_search(self, supernet: torch.nn.Module, batches: Any, work_dir: Any,
                     log: Callable[[str], None] = print) -> tuple[Any, dict[str, Any]]:
        """The strategy's own final pick on held-out ``(images, labels)`` batches: ``(Arch, summary)``."""
        raise NotImplementedError

    def trainable_modules(self) -> dict[str, torch.nn.Module]:
        return {}

    def check_schedule(self, iters_per_epoch: int, max_iters: int) -> list[str]:
        """Lines to log before training about what the schedule means for the strategy (raise
        ConfigError for a schedule it cannot work with)."""
        return []

    def epoch_report(self) -> str | None:
        """A line to log after each epoch (``None``: nothing to say); it closes the epoch's statistics."""
        return None

    def epoch_stats(self) -> dict[str, Any] | None:
        """The current epoch's statistics as a JSON-able dict (``None``: none kept)."""
        return None

    #: the work-dir file the engine rewrites from :attr:`epoch_log` after each epoch (``None``: no file)
    epoch_log_file: str | None = None
    #: the dicts of the epochs closed so far, one per epoch (kept in the strategy's state by those that have one)
    epoch_log: Sequence[dict[str, Any]] = ()

    def forward(self, model: torch.nn.Module, inputs: Any, path: Any) -> Any:
        raise NotImplementedError(f'{type(self).__name__} has no forward of its own')

    def state_dict(self) -> dict[str, Any]:
        return {'rng': self.sampler.rng.bit_generator.state, 'history': [list(h) for h in self.history]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sampler.rng.bit_generator.state = state['rng']
        self.history = [tuple(h) for h in state['history']]


@register
class SPOS(SearchStrategy):
    """Single Path One-Shot: a uniformly sampled path per step, trained with cross-entropy.

    Args:
        label_smoothing: of the cross-entropy (0.1, as the SPOS authors; docs/fidelity.md).
    """

    name = 'spos'

    def __init__(self, supernet: torch.nn.Module, *, label_smoothing: float = 0.1, **kw: Any) -> None:
        super().__init__(supernet, **kw)
        self.label_smoothing = checked_label_smoothing(self.name, label_smoothing)

    def train_step(self, ctx: StepContext) -> dict[str, float]:
        code = self.sample(ctx.inputs.device)
        logits = ctx.forward(ctx.inputs, code)
        loss = F.cross_entropy(logits, ctx.labels, label_smoothing=self.label_smoothing)
        ctx.optim_wrapper.update_params(loss)
        acc = D.mean(top1(logits.detach(), ctx.labels), ctx.inputs.device)
        macs = self.macs_of(code)
        self.record(ctx.step, macs, acc)
        return {'loss': float(loss.detach()), 'acc': acc, 'path_mmacs': macs / 1e6, **self.describe(code)}

    def describe(self, code: tuple[int, ...]) -> dict[str, float]:
        """Extra log fields about the trained path (none here)."""
        return {}
