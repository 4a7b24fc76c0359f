"""Search strategies: what one training iteration of a weight-sharing supernet does.

Every strategy implements the same small interface, so the engine (``cream_det.engine.search``)
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
from . import distributed as D
from .board import PrioritizedBoard
from .matching import MetaMatchingNetwork, meta_update, select_teacher, select_teacher_top1, student_loss

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

    def forward(self, model: torch.nn.Module, inputs: Any, path: Any) -> Any:
        raise NotImplementedError(f'{type(self).__name__} has no forward of its own')

    def state_dict(self) -> dict[str, Any]:
        return {'rng': self.sampler.rng.bit_generator.state, 'history': [list(h) for h in self.history]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sampler.rng.bit_generator.state = state['rng']
        self.history = [tuple(h) for h in state['history']]


@register
class SPOS(SearchStrategy):
    """Single Path One-Shot: a uniformly sampled path per step, trained with cross-entropy."""

    name = 'spos'

    def train_step(self, ctx: StepContext) -> dict[str, float]:
        code = self.sample(ctx.inputs.device)
        logits = ctx.forward(ctx.inputs, code)
        loss = F.cross_entropy(logits, ctx.labels)
        ctx.optim_wrapper.update_params(loss)
        acc = D.mean(top1(logits.detach(), ctx.labels), ctx.inputs.device)
        macs = self.macs_of(code)
        self.record(ctx.step, macs, acc)
        return {'loss': float(loss.detach()), 'acc': acc, 'path_mmacs': macs / 1e6, **self.describe(code)}

    def describe(self, code: tuple[int, ...]) -> dict[str, float]:
        """Extra log fields about the trained path (none here)."""
        return {}


@register
class Cream(SearchStrategy):
    """Cream: single paths distilled from prioritized paths picked by a meta matching network.

    Args:
        board_size, margin: the prioritized board's K and accuracy margin (10, 5 points).
        slice_size: images (and soft targets) each board entry keeps for teacher selection (4).
        warmup_iters / warmup_epochs: plain single-path training before the board starts (the
            authors: 20 epochs); give one of them.
        teacher: 'meta' (matching network) or 'top1' (best board path, m = 0.5).
        meta_interval: iterations between second-order matching-network updates (200).
        meta_lr: the matching network's learning rate (1e-4).
        board_acc: 'train_batch' (the authors: top-1 on the batch just trained on) or 'heldout'
            (top-1 on the batch's last ``heldout_size`` images, which are not trained on).
    """

    name = 'cream'

    def __init__(self, supernet: torch.nn.Module, *, board_size: int = 10, margin: float = 5.0,
                 slice_size: int = 4, warmup_iters: int = 0, warmup_epochs: int | None = None,
                 teacher: str = 'meta', meta_interval: int = 200,
                 meta_lr: float = 1e-4, board_acc: str = 'train_batch', heldout_size: int = 8, **kw: Any) -> None:
        super().__init__(supernet, **kw)
        if teacher not in ('meta', 'top1'):
            raise ConfigError(f"cream teacher={teacher!r}: 'meta' or 'top1'")
        if board_acc not in ('train_batch', 'heldout'):
            raise ConfigError(f"cream board_acc={board_acc!r}: 'train_batch' or 'heldout'")
        self.board = PrioritizedBoard(board_size, margin)
        self.slice_size, self.warmup_iters, self.warmup_epochs = slice_size, warmup_iters, warmup_epochs
        self.teacher = teacher
        self.meta_interval, self.board_acc, self.heldout_size = meta_interval, board_acc, heldout_size
        self.matcher = MetaMatchingNetwork(supernet.num_classes, slice_size)
        self.meta_opt = torch.optim.SGD(self.matcher.parameters(), lr=meta_lr, momentum=0.9)
        self.board_version = 0                 # bumps when the board changes (hooks rewrite board.json)

    # ---- one iteration ---------------------------------------------------------------------------------
    def train_step(self, ctx: StepContext) -> dict[str, float]:
        x, y = ctx.inputs, ctx.labels
        self.matcher.to(x.device)
        if self.board_acc == 'heldout':
            if x.shape[0] <= self.heldout_size:
                raise ConfigError(f'board_acc=heldout needs batches larger than heldout_size={self.heldout_size}')
            x, y, x_h, y_h = x[:-self.heldout_size], y[:-self.heldout_size], x[-self.heldout_size:], y[-self.heldout_size:]
        code = self.sample(x.device)
        warm = self._warmed_up(ctx)
        distill = warm and len(self.board) > 0
        log: dict[str, float] = {}
        teacher_logits = None
        if distill:
            idx, m = self._choose_teacher(ctx, code)
            entry = self.board[idx]
            with torch.no_grad():
                teacher_logits = ctx.supernet(x, entry.code)
            if ctx.step % self.meta_interval == 0 and self.teacher == 'meta' and x.shape[0] >= 2 * self.slice_size:
                log.update(self._meta_step(ctx, code, entry, x, y, teacher_logits))
            logits = ctx.forward(x, code)
            loss = student_loss(logits, y, F.softmax(teacher_logits, 1), m)
            log.update(m=m, teacher_acc=entry.acc)
        else:
            logits = ctx.forward(x, code)
            loss = F.cross_entropy(logits, y)
        ctx.optim_wrapper.update_params(loss)

        if self.board_acc == 'heldout':
            with torch.no_grad():
                acc = top1(ctx.supernet(x_h, code), y_h)
        else:
            acc = top1(logits.detach(), y)
        acc = D.mean(acc, x.device)
        macs = self.macs_of(code)
        self.record(ctx.step, macs, acc)
        if warm:
            self._offer(code, acc, macs, x, logits if teacher_logits is None else teacher_logits, ctx.step)
        log.update(loss=float(loss.detach()), acc=acc, path_mmacs=macs / 1e6, board=len(self.board),
                   board_best_acc=self.board.best().acc if len(self.board) else 0.0)
        return log

    def _warmed_up(self, ctx: StepContext) -> bool:
        if self.warmup_epochs is not None:
            return ctx.epoch >= self.warmup_epochs
        return ctx.step >= self.warmup_iters

    def _choose_teacher(self, ctx: StepContext, code: tuple[int, ...]) -> tuple[int, float]:
        if self.teacher == 'top1':
            return select_teacher_top1(self.board)
        # the student scores every entry in one batched, gradient-free forward on its own BN buffers
        # (train-mode statistics, as during training, without touching the running averages)
        buffers = {n: b.clone() for n, b in ctx.supernet.named_path_buffers(code)}
        from torch.func import functional_call
        params = dict(ctx.supernet.named_path_parameters(code))

        def student(images: torch.Tensor) -> torch.Tensor:
            return functional_call(ctx.supernet, {**params, **buffers}, (images, code))
        return select_teacher(student, self.board, self.matcher)

    def _meta_step(self, ctx: StepContext, code, entry, x, y, teacher_logits) -> dict[str, float]:
        k = self.slice_size
        self.meta_opt.zero_grad(set_to_none=True)
        out = meta_update(ctx.supernet, code, self.matcher, entry, x[:k], y[:k], F.softmax(teacher_logits[:k], 1),
                          x[k:2 * k], y[k:2 * k], inner_lr=float(_current_lr(ctx.optim_wrapper)))
        D.average_grads_(self.matcher.parameters())
        self.meta_opt.step()
        return {'meta_val_loss': out['val_loss']}

    def _offer(self, code, acc: float, macs: int, x: torch.Tensor, logits: torch.Tensor, step: int) -> None:
        """Offer the path to the board with rank 0's slice, so every rank stores the same entry."""
        if not self.board.would_enter(code, acc, macs):    # same answer on every rank: acc is averaged
            return
        k = min(self.slice_size, x.shape[0])
        images = D.broadcast_(x[:k].detach().clone().contiguous())
        soft = D.broadcast_(F.softmax(logits[:k].detach(), 1).contiguous())
        if self.board.consider(code, acc, macs, images.cpu(), soft.cpu(), step):
            self.board_version += 1

    # ---- interface ---------------------------------------------------------------------------------------
    def ranked_candidates(self) -> list[tuple[int, ...]]:
        """Board paths best first, keeping those inside the MACs range (paths train unconstrained)."""
        lo, hi = self.macs_range if self.macs_range is not None else (float('-inf'), float('inf'))
        return [e.code for e in self.board if lo <= e.macs <= hi]

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), 'board': self.board.state_dict(), 'matcher': self.matcher.state_dict(),
                'meta_opt': self.meta_opt.state_dict(), 'board_version': self.board_version}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.board.load_state_dict(state['board'])
        self.matcher.load_state_dict(state['matcher'])
        self.meta_opt.load_state_dict(state['meta_opt'])
        self.board_version = state['board_version']


def _current_lr(optim_wrapper: Any) -> float:
    lrs = optim_wrapper.get_lr()['lr']
    return lrs[0] if isinstance(lrs, (list, tuple)) else lrs
