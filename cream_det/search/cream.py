"""Cream (Peng et al., NeurIPS 2020): single paths distilled from prioritized paths chosen by a meta matching network.

Every step trains one sampled path. After the warm-up, the path is distilled from a board path
picked by the matching network, with weight m: ``loss = (m * KD + (2 - m) * CE) / 2``; the path
is then offered to the board with its training-batch top-1. The matching network learns from the
student loss through m (first order, every step) and/or from a second-order meta update at fixed
batch indices (``matcher_grad``). Every choice where the paper and the authors' code differ is a
switch below; ``docs/fidelity.md`` lists them with the authors' values, and
``configs/search/cream_imagenet_0-600_authors.py`` sets them all to the authors' behaviour.
"""
from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch.func import functional_call

from ..errors import ConfigError
from ..utils import distributed as D
from .board import TIEBREAKS, PrioritizedBoard
from .cream_epochs import FILE_NAME as EPOCH_LOG_FILE
from .cream_epochs import EpochStats, report_line
from .matching import (INNER_LOSSES, MATCHER_INITS, SELECTIONS, MetaMatchingNetwork, entry_scores, meta_update,
                       student_loss)
from .recent_batches import RecentBatches
from .strategies import SearchStrategy, StepContext, checked_label_smoothing, register, top1

_CHOICES = {
    'teacher': ('meta', 'top1', 'random'),
    'board_acc': ('train_batch', 'heldout'),
    'board_targets': ('teacher', 'own'),
    'board_tiebreak': TIEBREAKS,
    'selection': SELECTIONS,
    'matcher_init': MATCHER_INITS,
    'matcher_grad': ('both', 'meta', 'student'),
    'meta_interval_by': ('epoch_iter', 'global'),
    'meta_inner_lr': ('supernet', 'meta'),
    'meta_inner_loss': INNER_LOSSES,
    'meta_clip_scope': ('every_step', 'meta_update'),
    'grad_reset': ('none', 'zero'),
}


@register
class Cream(SearchStrategy):
    """Cream: single paths distilled from prioritized paths picked by a meta matching network.

    Args (the authors' value in brackets where it differs from the default):
        board_size, margin: the prioritized board's K and accuracy margin (10, 5 points).
        slice_size: images (and soft targets) each board entry keeps for teacher selection (4).
        warmup_iters / warmup_epochs / warmup_fraction: plain single-path training before the board
            starts, as iterations, epochs, or a fraction of the search's iterations (distillation starts
            at step ``ceil(warmup_fraction * max_iters)``; ``StepContext.max_iters`` says the total); give
            at most one (``warmup_iters=0``, the default, counts as none) [the authors train on CE while
            ``epoch <= 20`` of 120: ``warmup_epochs=21``, or ``warmup_fraction=0.175`` (21/120)].
        teacher: 'meta' (matching network), 'top1' (best board path, m = 0.5) or 'random' (a board path
            drawn uniformly, m = 0.5; the ablation baseline for the matching network).
        selection: 'per_entry' (each entry's images are their own BatchNorm batch, as in the authors'
            loop of one forward per entry and in the meta update; computed as one forward over the
            board with per-entry batch statistics) or 'batched' (one plain forward over the board; the
            same in eval mode, pooled BN statistics in train mode).
        board_acc: 'train_batch' (top-1 on the batch just trained on) or 'heldout' (top-1 on the
            batch's last ``heldout_size`` images, which are not trained on).
        board_eval_batches: after the warm-up, a path is offered to the board with its top-1 on the
            step's batch (or its held-out part) and on the same part of the ``board_eval_batches - 1``
            batches this rank trained on just before, those scored with the weights of the step's
            training forward (:mod:`.recent_batches`; 1: the step's batch alone). The authors' board
            sees 8 GPUs x 128 = 1,024 images a step: 16 batches of 64 on one process judge as many.
        board_targets: soft targets stored with an entry: 'teacher' (the softmax of the teacher that
            distilled the path; the path's own while the board is empty) or 'own'.
        board_tiebreak: order of equal-accuracy entries: 'macs_asc' (the paper: cheaper first)
            ['flops_desc'].
        label_smoothing: of every cross-entropy, the meta update's validation loss included (0.1).
        matcher_init: 'uniform' (U(-1, 1), the authors') or 'torch' (``nn.Linear``'s default).
        matcher_grad: what trains the matching network: 'both' (the student loss through m at every
            distillation step, and the second-order meta update), 'meta' (the meta update only:
            the paper's description) or 'student' (first order only).
        meta_interval, meta_interval_by: the meta update runs when the batch index is a positive
            multiple of ``meta_interval`` (200): within the epoch ('epoch_iter', the authors') or
            counted from the start ('global').
        meta_lr, meta_momentum, meta_nesterov, meta_clip, meta_lr_decay: the matcher's SGD (1e-4,
            0.9, Nesterov, gradient norm clipped to 1, lr decayed with the supernet's schedule).
        meta_clip_scope: which matcher steps ``meta_clip`` clips: 'every_step' (the first-order step
            of every distillation step too) ['meta_update': the meta update's only; the authors'
            first-order step is the supernet optimizer's, unclipped].
        grad_reset: what the supernet's gradients become after each optimizer step: 'none' (set to
            None: an op off the path is not updated) ['zero': zeroed in place, as torch 1.2's
            ``zero_grad`` did, so every op ever sampled keeps a zero gradient and each SGD step
            applies weight decay and momentum to it, on the path or not].
        meta_inner_lr: lr of the simulated step: 'supernet' (the student's current lr, the
            paper's theta - xi * grad) ['meta': the matcher's current lr].
        meta_inner_loss: loss of the simulated step: 'blended' (the student loss with m) ['kd': m * KD].
        meta_student_step: also take the real student step with the inner gradient (clipped to
            ``meta_clip``) inside the meta update [True].
    """

    name = 'cream'

    def __init__(self, supernet: torch.nn.Module, *, board_size: int = 10, margin: float = 5.0,
                 slice_size: int = 4, warmup_iters: int = 0, warmup_epochs: int | None = None,
                 warmup_fraction: float | None = None, teacher: str = 'meta', selection: str = 'per_entry',
                 board_acc: str = 'train_batch', heldout_size: int = 8, board_eval_batches: int = 1,
                 board_targets: str = 'teacher', board_tiebreak: str = 'macs_asc',
                 label_smoothing: float = 0.1, matcher_init: str = 'uniform', matcher_grad: str = 'both',
                 meta_interval: int = 200, meta_interval_by: str = 'epoch_iter', meta_lr: float = 1e-4,
                 meta_momentum: float = 0.9, meta_nesterov: bool = True, meta_clip: float | None = 1.0,
                 meta_lr_decay: bool = True, meta_inner_lr: str = 'supernet', meta_inner_loss: str = 'blended',
                 meta_student_step: bool = False, meta_clip_scope: str = 'every_step', grad_reset: str = 'none',
                 **kw: Any) -> None:
        super().__init__(supernet, **kw)
        given = dict(teacher=teacher, selection=selection, board_acc=board_acc, board_targets=board_targets,
                     board_tiebreak=board_tiebreak, matcher_init=matcher_init, matcher_grad=matcher_grad,
                     meta_interval_by=meta_interval_by, meta_inner_lr=meta_inner_lr, meta_inner_loss=meta_inner_loss,
                     meta_clip_scope=meta_clip_scope, grad_reset=grad_reset)
        for key, value in given.items():
            if value not in _CHOICES[key]:
                raise ConfigError(f"cream {key}={value!r}: one of {', '.join(repr(c) for c in _CHOICES[key])}")
        if meta_interval < 1:
            raise ConfigError(f'cream meta_interval={meta_interval}: must be a positive number of iterations')
        _check_warmup(warmup_iters, warmup_epochs, warmup_fraction)
        if not isinstance(board_eval_batches, int) or board_eval_batches < 1:
            raise ConfigError(f'cream board_eval_batches={board_eval_batches!r}: a whole number of batches, at least 1')
        self.board = PrioritizedBoard(board_size, margin, tiebreak=board_tiebreak)
        self.slice_size, self.warmup_iters, self.warmup_epochs = slice_size, warmup_iters, warmup_epochs
        self.warmup_fraction = None if warmup_fraction is None else float(warmup_fraction)
        self.recent = RecentBatches(board_eval_batches - 1)      # the batches before this one, to score on
        self.teacher, self.selection, self.board_acc, self.heldout_size = teacher, selection, board_acc, heldout_size
        self.board_targets, self.label_smoothing = board_targets, checked_label_smoothing('cream', label_smoothing)
        self.matcher_grad, self.meta_interval, self.meta_interval_by = matcher_grad, meta_interval, meta_interval_by
        self.meta_lr, self.meta_clip, self.meta_lr_decay = float(meta_lr), meta_clip, meta_lr_decay
        self.meta_inner_lr, self.meta_inner_loss, self.meta_student_step = meta_inner_lr, meta_inner_loss, meta_student_step
        self.meta_clip_scope, self.grad_reset = meta_clip_scope, grad_reset
        self.matcher = MetaMatchingNetwork(supernet.num_classes, slice_size, init=matcher_init)
        self._matcher_w0 = self.matcher.fc.weight.detach().clone()     # the report's drift is measured from here
        self.meta_opt = torch.optim.SGD(self.matcher.parameters(), lr=meta_lr, momentum=meta_momentum,
                                        nesterov=meta_nesterov and meta_momentum > 0)
        self.board_version = 0                 # bumps when the board changes (hooks rewrite board.json)
        self.meta_updates = 0                  # second-order updates so far (kept across resume)
        self._stats = EpochStats(board_size)        # the current epoch's report
        self.epoch_log: list[dict[str, Any]] = []      # every closed epoch's dict (kept across resume)

    # ---- one iteration ---------------------------------------------------------------------------------
    def train_step(self, ctx: StepContext) -> dict[str, float]:
        x, y = ctx.inputs, ctx.labels
        self.matcher.to(x.device)
        if self.board_acc == 'heldout':
            if x.shape[0] <= self.heldout_size:
                raise ConfigError(f'board_acc=heldout needs batches larger than heldout_size={self.heldout_size}')
            x, y, x_h, y_h = x[:-self.heldout_size], y[:-self.heldout_size], x[-self.heldout_size:], y[-self.heldout_size:]
        x_score, y_score = (x_h, y_h) if self.board_acc == 'heldout' else (x, y)
        code = self.sample(x.device)
        warm = self._warmed_up(ctx)
        self._stats.note_step(ctx.epoch, warm)
        distill = warm and len(self.board) > 0
        log: dict[str, float] = {}
        teacher_logits = None
        first_order = distill and self.teacher == 'meta' and self.matcher_grad in ('both', 'student')
        if distill:
            if self._meta_due(ctx) and x.shape[0] >= 2 * self.slice_size:
                # fp32 by design under --amp: the second-order signal would underflow in fp16, and the
                # matcher's own optimizer has no loss scaler; it runs once per meta_interval steps
                with torch.autocast(device_type=x.device.type, enabled=False):
                    log.update(self._meta_step(ctx, code, x.float(), y))
            idx, m = self._choose_teacher(ctx, code, with_grad=first_order)
            entry = self.board[idx]
            with torch.no_grad():
                teacher_logits = ctx.supernet(x, entry.code)
            logits = ctx.forward(x, code)
            loss = student_loss(logits, y, F.softmax(teacher_logits, 1), m, self.label_smoothing)
            m_value = float(m.detach()) if isinstance(m, torch.Tensor) else m
            gap = D.mean(top1(teacher_logits, y) - top1(logits.detach(), y), x.device)
            self._stats.note_teacher(idx, m_value, gap)
            log.update(m=m_value, teacher_rank=idx + 1, teacher_acc=entry.acc)
        else:
            logits = ctx.forward(x, code)
            loss = F.cross_entropy(logits, y, label_smoothing=self.label_smoothing)
        # the earlier batches are scored with the weights of the step's training forward (before the update)
        earlier = (self.recent.correct(self._grouped_path_fn(ctx, code), x.device) if warm and len(self.recent)
                   else (0, 0))
        self.recent.push(x_score, y_score)
        scale = _loss_scale(ctx.optim_wrapper)
        if self.grad_reset == 'zero':       # torch 1.2's zero_grad: gradients zeroed in place, kept
            ctx.optim_wrapper.update_params(loss, zero_kwargs=dict(set_to_none=False))
        else:
            ctx.optim_wrapper.update_params(loss)
        if first_order:      # the student loss reached the matcher through m
            self._step_matcher(ctx, unscale=scale, clip=self.meta_clip_scope == 'every_step')

        if self.board_acc == 'heldout':
            with torch.no_grad():
                scored = ctx.supernet(x_h, code)
        else:
            scored = logits.detach()
        if earlier[1]:          # the step's batch and the earlier ones, each image counted once
            hits = int((scored.argmax(1) == y_score).sum()) + earlier[0]
            acc = 100.0 * hits / (y_score.numel() + earlier[1])
        else:
            acc = top1(scored, y_score)
        acc = D.mean(acc, x.device)
        macs = self.macs_of(code)
        self.record(ctx.step, macs, acc)
        if warm:
            targets = logits if teacher_logits is None or self.board_targets == 'own' else teacher_logits
            self._offer(code, acc, macs, x, targets, ctx.step)
        log.update(loss=float(loss.detach()), acc=acc, path_mmacs=macs / 1e6, board=len(self.board),
                   board_best_acc=self.board.best().acc if len(self.board) else 0.0,
                   meta_updates=self.meta_updates)
        return log

    def _warmed_up(self, ctx: StepContext) -> bool:
        if self.warmup_epochs is not None:
            return ctx.epoch >= self.warmup_epochs
        if self.warmup_fraction is not None:
            if ctx.max_iters is None:
                raise ConfigError('cream warmup_fraction needs the search\'s total number of iterations, but the step '
                                  'was not told it (StepContext.max_iters is None); give warmup_iters or '
                                  'warmup_epochs instead, or pass max_iters')
            return ctx.step >= self.warmup_end(ctx.max_iters)
        return ctx.step >= self.warmup_iters

    def warmup_end(self, max_iters: int, iters_per_epoch: int | None = None) -> int:
        """The first step after the warm-up (the board's first offer), in a search of ``max_iters`` steps;
        a warm-up in epochs needs ``iters_per_epoch``."""
        if self.warmup_epochs is not None:
            if iters_per_epoch is None:
                raise ValueError('a warm-up in epochs ends at a step that depends on iters_per_epoch')
            return self.warmup_epochs * iters_per_epoch
        if self.warmup_fraction is not None:     # at least the fraction: 0.175 of 120 epochs is 21 whole epochs
            return math.ceil(self.warmup_fraction * max_iters - 1e-6)
        return self.warmup_iters

    def _meta_due(self, ctx: StepContext) -> bool:
        if self.teacher != 'meta' or self.matcher_grad == 'student':
            return False
        index = ctx.step if self.meta_interval_by == 'global' or ctx.batch_idx is None else ctx.batch_idx
        return index > 0 and index % self.meta_interval == 0

    def _path_fn(self, ctx: StepContext, code: tuple[int, ...]) -> Callable[[torch.Tensor], torch.Tensor]:
        """The path as a function of images, on copies of its BN buffers (train-mode statistics, as in
        training, without moving the running averages or ``num_batches_tracked`` on a few stored images)."""
        params = dict(ctx.supernet.named_path_parameters(code))
        buffers = {n: b.clone() for n, b in ctx.supernet.named_path_buffers(code)}

        def logits(images: torch.Tensor) -> torch.Tensor:
            return functional_call(ctx.supernet, {**params, **buffers}, (images, code))
        return logits

    def _grouped_path_fn(self, ctx: StepContext, code: tuple[int, ...]) -> Callable[[torch.Tensor], torch.Tensor]:
        """The path as a function of images for the per-entry selection: the supernet's own forward.

        Inside :func:`~.grouped_bn.per_group_batch_norm` no BatchNorm reads or moves its running
        statistics, so the copies :meth:`_path_fn` swaps in (``functional_call`` walks every tensor of
        the supernet: about 20 ms a call at ImageNet size, a third of the selection's cost at 64 px)
        are not needed; only the ``num_batches_tracked`` counters the modules bump are put back.
        """
        counters = [b for n, b in ctx.supernet.named_path_buffers(code) if n.endswith('num_batches_tracked')]

        def logits(images: torch.Tensor) -> torch.Tensor:
            saved = [c.clone() for c in counters]
            try:
                return ctx.supernet(images, code)
            finally:
                for c, v in zip(counters, saved):
                    c.copy_(v)
        return logits

    def _choose_teacher(self, ctx: StepContext, code: tuple[int, ...],
                        with_grad: bool = False) -> tuple[int, 'float | torch.Tensor']:
        """Board index of the teacher and m; m keeps its graph to the matcher when ``with_grad``."""
        if self.teacher == 'top1':
            return 0, 0.5
        if self.teacher == 'random':       # the sampler's RNG advances alike on every rank: same pick everywhere
            return int(self.sampler.rng.integers(len(self.board))), 0.5
        with torch.set_grad_enabled(with_grad):
            path = self._grouped_path_fn if self.selection == 'per_entry' else self._path_fn
            scores = entry_scores(path(ctx, code), self.board, self.matcher, self.selection)
        index = int(torch.argmax(scores.detach()))
        m = self.matcher.weight_of(scores[index])
        return index, (m if with_grad else float(m))

    def _lr_factor(self, ctx: StepContext) -> float:
        """The supernet schedule's current lr over its initial lr (the authors decay the matcher with it)."""
        group = ctx.optim_wrapper.param_groups[0]
        return float(group['lr']) / float(group.get('initial_lr', group['lr']) or 1.0)

    def _step_matcher(self, ctx: StepContext, unscale: float = 1.0, clip: bool = True) -> None:
        params = list(self.matcher.parameters())
        grads = [p.grad for p in params if p.grad is not None]
        if unscale != 1.0:
            for g in grads:
                g.div_(unscale)
        D.average_grads_(params)
        if all(bool(torch.isfinite(g).all()) for g in grads):     # AMP overflow: skip, as the scaler does
            if clip and self.meta_clip is not None:
                torch.nn.utils.clip_grad_norm_(params, self.meta_clip)
            for g in self.meta_opt.param_groups:
                g['lr'] = self.meta_lr * (self._lr_factor(ctx) if self.meta_lr_decay else 1.0)
            self.meta_opt.step()
        self.meta_opt.zero_grad(set_to_none=True)

    def _meta_step(self, ctx: StepContext, code: tuple[int, ...], x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        """One second-order update of the matcher (and, with ``meta_student_step``, one real student step)."""
        k = self.slice_size
        idx, _ = self._choose_teacher(ctx, code)
        entry = self.board[idx]
        with torch.no_grad():
            teacher_soft = F.softmax(self._path_fn(ctx, entry.code)(x[:k]), 1)
        factor = self._lr_factor(ctx)
        inner_lr = (self.meta_lr * (factor if self.meta_lr_decay else 1.0) if self.meta_inner_lr == 'meta'
                    else float(ctx.optim_wrapper.param_groups[0]['lr']))
        self.meta_opt.zero_grad(set_to_none=True)
        out = meta_update(ctx.supernet, code, self.matcher, entry, x[:k], y[:k], teacher_soft, x[k:2 * k], y[k:2 * k],
                          inner_lr=inner_lr, inner_loss=self.meta_inner_loss, label_smoothing=self.label_smoothing,
                          return_inner_grads=self.meta_student_step)
        self._step_matcher(ctx)
        if self.meta_student_step:
            params = dict(ctx.supernet.named_path_parameters(code))
            for name, g in out['inner_grads'].items():
                params[name].grad = g.clone()
            stepped = [params[n] for n in out['inner_grads']]
            D.average_grads_(stepped)
            if self.meta_clip is not None:
                torch.nn.utils.clip_grad_norm_(stepped, self.meta_clip)
            optimizer = getattr(ctx.optim_wrapper, 'optimizer', ctx.optim_wrapper)
            optimizer.step()
            optimizer.zero_grad(set_to_none=self.grad_reset == 'none')
        self.meta_updates += 1
        return {'meta_val_loss': float(out['val_loss']), 'meta_m': float(out['m'])}

    def _offer(self, code, acc: float, macs: int, x: torch.Tensor, logits: torch.Tensor, step: int) -> None:
        """Offer the path to the board with rank 0's slice, so every rank stores the same entry."""
        if not self.board.would_enter(code, acc, macs):    # same answer on every rank: acc is averaged
            return
        k = min(self.slice_size, x.shape[0])
        images = D.broadcast_(x[:k].detach().clone().contiguous())
        soft = D.broadcast_(F.softmax(logits[:k].detach(), 1).contiguous())
        if self.board.consider(code, acc, macs, images.cpu(), soft.cpu(), step):
            self.board_version += 1
            self._stats.note_entry()

    # ---- what the log tells about the matcher -------------------------------------------------------------
    #: the work-dir file the engine writes :attr:`epoch_log` to (one JSON line per epoch, rank 0)
    epoch_log_file = EPOCH_LOG_FILE

    def matcher_norm(self) -> float:
        return float(torch.linalg.vector_norm(self.matcher.fc.weight.detach()))

    def matcher_drift(self) -> float:
        """|W - W_init|: how far the matcher has learnt away from its initialisation."""
        w = self.matcher.fc.weight.detach()
        return float(torch.linalg.vector_norm(w - self._matcher_w0.to(w)))

    def epoch_stats(self) -> dict[str, Any] | None:
        """The current epoch's statistics so far (keys: :mod:`.cream_epochs`); ``None`` before its first step."""
        return self._stats.summary([e.acc for e in self.board], self.meta_updates, self.matcher_norm(),
                                   self.matcher_drift())

    def epoch_report(self) -> str | None:
        """Closes the epoch: appends :meth:`epoch_stats` to :attr:`epoch_log` and returns its line (meta
        updates so far, m's mean/std, how often each board rank taught, the matcher's weight norm and its
        distance from the initialisation; ``None`` when no step distilled); statistics restart."""
        stats = self.epoch_stats()
        self._stats.reset()
        if stats is None:
            return None
        self.epoch_log.append(stats)
        return report_line(stats)

    def planned_meta_updates(self, iters_per_epoch: int, max_iters: int) -> int:
        """How many meta updates the schedule makes at most (fewer if the board is still empty): the
        training step's own rule (:meth:`_warmed_up`, :meth:`_meta_due`) asked for every iteration."""
        count = 0
        for step in range(max_iters):
            epoch, batch_idx = divmod(step, iters_per_epoch)
            at = SimpleNamespace(step=step, epoch=epoch, batch_idx=batch_idx, max_iters=max_iters)
            count += self._warmed_up(at) and self._meta_due(at)
        return count

    def check_schedule(self, iters_per_epoch: int, max_iters: int) -> list[str]:
        """Start-up lines about the schedule; a ConfigError when the matcher would never get its meta update."""
        n = self.planned_meta_updates(iters_per_epoch, max_iters)
        warmup = self._warmup_text(iters_per_epoch, max_iters)
        if self.teacher == 'meta' and self.matcher_grad != 'student' and n == 0:
            raise ConfigError(
                f'cream: this schedule makes no meta update ({iters_per_epoch} iterations per epoch, {max_iters} in '
                f'all, warm-up {warmup}, meta_interval={self.meta_interval} by {self.meta_interval_by}); '
                "lower model.strategy.meta_interval, shorten the warm-up, or set matcher_grad='student'")
        return [f'cream: warm-up {warmup}, then up to {n} meta updates (every {self.meta_interval} '
                f'iterations by {self.meta_interval_by}; {iters_per_epoch} iterations per epoch, {max_iters} in all); '
                f'matcher trained by {self.matcher_grad}']

    def _warmup_text(self, iters_per_epoch: int, max_iters: int) -> str:
        if self.warmup_epochs is not None:
            return f'{self.warmup_epochs} epochs'
        if self.warmup_fraction is not None:
            return f'{self.warmup_fraction:g} of the search ({self.warmup_end(max_iters)} iterations)'
        return f'{self.warmup_iters} iterations'

    # ---- interface ---------------------------------------------------------------------------------------
    def ranked_candidates(self) -> list[tuple[int, ...]]:
        """Board paths best first, keeping those inside the MACs range (paths train unconstrained)."""
        lo, hi = self.macs_range if self.macs_range is not None else (float('-inf'), float('inf'))
        return [e.code for e in self.board if lo <= e.macs <= hi]

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), 'board': self.board.state_dict(), 'matcher': self.matcher.state_dict(),
                'meta_opt': self.meta_opt.state_dict(), 'board_version': self.board_version,
                'meta_updates': self.meta_updates, 'matcher_init': self._matcher_w0,
                'epoch_log': [dict(r) for r in self.epoch_log], 'recent_batches': self.recent.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.board.load_state_dict(state['board'])
        self.matcher.load_state_dict(state['matcher'])
        self.meta_opt.load_state_dict(state['meta_opt'])
        self.board_version = state['board_version']
        self.meta_updates = int(state.get('meta_updates', 0))
        self._matcher_w0 = state.get('matcher_init', self._matcher_w0)
        self.epoch_log = [dict(r) for r in state.get('epoch_log', [])]     # absent from searches saved before it
        self.recent.load_state_dict(state.get('recent_batches', []))
        self._stats.reset()


def _check_warmup(iters: int, epochs: int | None, fraction: float | None) -> None:
    """At most one warm-up (``warmup_iters=0``, the default, is none), each in its range; else a ConfigError."""
    given = [name for name, on in (('warmup_iters', iters != 0), ('warmup_epochs', epochs is not None),
                                   ('warmup_fraction', fraction is not None)) if on]
    if len(given) > 1:
        raise ConfigError(f"cream: {' and '.join(given)} are given; a warm-up is one of them: set the others to "
                          f"their defaults (model.strategy.warmup_iters=0, warmup_epochs=None, warmup_fraction=None)")
    if iters < 0 or (epochs is not None and epochs < 0):
        raise ConfigError(f'cream warmup_iters={iters}, warmup_epochs={epochs}: a warm-up cannot be negative')
    if fraction is not None and not 0.0 <= fraction < 1.0:
        raise ConfigError(f'cream warmup_fraction={fraction}: a fraction of the search in [0, 1) '
                          '(the authors: 21/120 = 0.175)')


def _loss_scale(optim_wrapper: Any) -> float:
    """The AMP loss scale the next backward uses (1 without AMP): gradients reaching the matcher carry it."""
    scaler = getattr(optim_wrapper, 'loss_scaler', None)
    return float(scaler.get_scale()) if scaler is not None else 1.0


__all__ = ['Cream']
