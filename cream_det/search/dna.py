"""DNA: block-wise supervised search with knowledge distillation (Li et al., CVPR 2020), as a strategy.

The supernet's searchable stages are DNA's blocks. Each step, a stage ``s`` runs a cell — its first
``d`` layers, ``d`` drawn from ``cell_depths``, one uniformly sampled op per layer — on the
**teacher's** feature map before the stage and is trained to reproduce the teacher's map after it
(mean squared error, the authors' training loss). The inputs are the teacher's detached maps, so the
stages' gradients are independent. Two schedules:

- ``'blockwise'`` (the authors'): stage after stage, ``stage_epochs`` each, each stage with its own
  optimizer (Adam, weight decay 1e-4 on weights, none on BN and biases), learning rate
  (``stage_lr``) and per-epoch decay (0.9); only the current stage's parameters are in its
  optimizer, the others do not change.
- ``'concurrent'``: every stage each step from the summed loss with the engine's optimizer and
  schedule — every stage gets the same gradients as alone, in 1/S of the epochs.

Gradient clipping (``clip_grad``) is per stage in both, so one stage's large gradients never shrink
another's step.

After training, every cell of every stage — every depth of ``cell_depths`` and every op sequence
(``sum(n_ops ** d)`` per stage) — is rated on held-out batches by the authors' relative L1
``mean|out - target| / std(target)`` (``rating='relative_l1'``; ``'mse'`` rates by the training
loss). The network is the combination of one cell per stage with the lowest summed rating whose
total MACs (each cell's exact MACs from the cost table) lie inside the MACs range — found exactly
(:func:`~cream_det.search.combination.best_combination`), not by sampling.

Choices made here (and why):

- **Channel bridge.** The supernet keeps the search space's widths, so its weights, MACs and
  exported subnets are those of the searched networks. Where the teacher's width differs, a
  learned 1x1 conv + BN on the student side maps the stage's output to the teacher's width (and,
  before the stage, the teacher's previous map to the stage's input width). The authors' code
  widens the last layer of each student block to the teacher's width instead, which would change
  the searched network. Bridges are trained with the stage, saved in every checkpoint (they are
  modules of the model), and not part of the exported arch or its MACs. ``project='always'``
  puts a projection after every stage even where the widths agree.
- **First stage input.** The teacher's map at the stride entering the first stage (after the
  fixed first block) when it has one; otherwise (or with ``stage0_input='student_stem'``, what the
  authors' code does) the student's own stem and first block on the image, trained with stage 1.
- **Scoring BatchNorm.** A candidate's BN running statistics in the supernet are a mixture over
  every path that shared the layer, so candidates are scored with batch statistics of each
  held-out batch (BN in train mode, as the authors' ``_potential`` does); the running statistics
  are restored afterwards, so scoring leaves the supernet as trained.
- **Fixed parts.** Stem, first block, last 1x1 conv and head are not distilled (they are not
  searched); their MACs are the fixed part of the budget.
- **Cells share weights across depths.** A depth-d cell is the first d layers of the stage's
  supernet, so all depths of a stage train one set of weights (each step draws a depth). The
  authors train one supernet per block depth instead (``process_potential.py`` pools their
  ratings); docs/fidelity.md names the difference.
"""
from __future__ import annotations

import itertools
import json
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import ConfigError
from ..space import Arch, cost_table
from ..utils.io import atomic_write_text
from ..utils import distributed as D
from .combination import Combination, best_combination
from .strategies import SearchStrategy, StepContext, register
from .teacher import TeacherFeatures, build_teacher

Batch = tuple[torch.Tensor, torch.Tensor]
SCORES_FILE = 'dna_scores.json'


def _bridge(c_in: int, c_out: int, always: bool) -> nn.Module:
    if c_in == c_out and not always:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out))


class StageBridges(nn.Module):
    """Learned 1x1 conv + BN bridges between the teacher's widths and the stages' (identity where equal).

    ``inp[s]``: teacher map before stage ``s`` -> the stage's input width; ``out[s]``: the stage's
    output -> the teacher's width after it.
    """

    def __init__(self, stage_in: Sequence[int], stage_out: Sequence[int], teacher: Sequence[int | None],
                 always: bool = False) -> None:
        super().__init__()
        self.inp = nn.ModuleList([nn.Identity() if t is None else _bridge(t, c, False)
                                  for t, c in zip(teacher[:-1], stage_in)])
        self.out = nn.ModuleList([_bridge(c, t, always) for c, t in zip(stage_out, teacher[1:])])


def stage_in_channels(supernet: nn.Module) -> list[int]:
    """Input width of each searchable stage, read from its first op's first convolution."""
    out = []
    for s in range(len(supernet.depths)):
        conv = next(m for m in supernet.blocks[s + 1][0][0].modules() if isinstance(m, nn.Conv2d))
        out.append(int(conv.in_channels))
    return out


def stage_candidates(n_ops: int, depth: 'int | Sequence[int]') -> list[tuple[int, ...]]:
    """Every op sequence of a stage cell of ``depth`` layers, or of each depth in ``depth`` (shallowest
    first): DNA rates them all, cells of different depths together."""
    depths = [depth] if isinstance(depth, (int, np.integer)) else list(depth)
    return [c for d in depths for c in itertools.product(range(n_ops), repeat=int(d))]


def stage_macs(supernet: nn.Module, stage: int, cands: Sequence[Sequence[int]]) -> np.ndarray:
    """Exact MACs of each candidate op sequence of ``stage`` (any depth: a cell of depth d is the
    stage's first d layer slots of the space's cost table)."""
    sp = supernet.space
    table = cost_table(sp, supernet.resolution, supernet.num_classes)
    off = sum(st.max_depth for st in sp.stages[:stage])
    return np.asarray([int(table.macs[off + np.arange(len(c)), list(c)].sum()) if len(c) else 0 for c in cands],
                      dtype=np.int64)


def stage_latency(table: Any, space: Any, stage: int, cands: Sequence[Sequence[int]]) -> np.ndarray:
    """Predicted ms each candidate op sequence of ``stage`` adds (a cell of depth d fills the stage's first
    d slots), read from a latency table by pricing codes with only that cell present: a table's
    prediction is a sum over slots, so the cells' ms add up to the arch's, less the fixed part."""
    off = sum(st.max_depth for st in space.stages[:stage])
    codes = np.full((len(cands), space.max_layers), -1, dtype=np.int8)
    for i, c in enumerate(cands):
        codes[i, off:off + len(c)] = c
    empty = float(table.predict_codes(np.full(space.max_layers, -1, dtype=np.int8)))
    return np.asarray(table.predict_codes(codes), dtype=np.float64).reshape(-1) - empty


def relative_l1(out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The authors' rating of a block on one batch: ``mean|out - target| / std(target)``.

    ``std`` is over every element of the batch's teacher map (``process_potential.py`` ranks by this
    ``cl_loss``, computed per batch in ``distill_train.py:_potential``). Dividing by the target's
    spread puts blocks with large and small teacher activations on one scale, so no stage dominates
    the summed rating the knapsack minimises.
    """
    return (out - target).abs().mean() / (target.std() + 1e-9)


#: how a candidate cell is rated on a held-out batch (lower is better)
RATINGS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    'relative_l1': relative_l1, 'mse': F.mse_loss}


def run_stage(supernet: nn.Module, bridges: StageBridges, s: int, ops: Sequence[int], maps: Sequence[Any],
              images: torch.Tensor | None = None) -> torch.Tensor:
    """Stage ``s`` of a path on the teacher's map before it (or on the image through the student's stem
    when ``maps[s]`` is None), bridged to the teacher's width after it."""
    if maps[s] is None:
        if s != 0 or images is None:
            raise ConfigError(f'DNA stage {s + 1} has no teacher input map')
        h = supernet.blocks[0](supernet.bn1(supernet.conv_stem(images)))
    else:
        h = bridges.inp[s](maps[s])
    for i, j in enumerate(ops):
        h = supernet.blocks[s + 1][i][j](h)
    return bridges.out[s](h)


#: the authors' per-block Adam learning rates (``train_pipeline.yaml``: blocks of 24, 40, 80, 112, 192
#: channels, then the fixed 320 block); the Cream space's stages take them in order
AUTHORS_STAGE_LR = (0.002, 0.005, 0.005, 0.005, 0.005)


def _per_stage(value: Any, n: int, what: str, cast: Callable[[Any], Any]) -> list[Any]:
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ConfigError(f'dna {what}: give one value per searchable stage ({n}), got {list(value)}')
        return [cast(v) for v in value]
    return [cast(value)] * n


@register
class DNA(SearchStrategy):
    """DNA's block-wise distillation (see the module docstring).

    Args:
        teacher: ``dict(checkpoint=..., arch=... | timm=..., modules=..., how_to_make=...)``
            (see :func:`~cream_det.search.teacher.build_teacher`).
        project: ``'auto'`` (bridge only where widths differ) or ``'always'``.
        stage0_input: ``'auto'`` (the teacher's map when it has one at that stride) or
            ``'student_stem'``.
        score_batches: held-out batches the final scoring uses (``None``: all).
        rating: how the final search rates a cell: ``'relative_l1'`` (the authors': mean absolute
            error over the teacher map's std) or ``'mse'`` (the training loss).
        cell_depths: depths of the cells rated per stage: ``'all'`` (every depth from the space's
            ``min_depth`` to the supernet's depth), one list for every stage, or one list per stage.
            A depth-d cell is the stage's first d layers.
        schedule: ``'concurrent'`` (every stage each step, the engine's optimizer and schedule) or
            ``'blockwise'`` (the authors': stage after stage, ``stage_epochs`` each, its own
            optimizer and learning rate; the engine's optimizer is not stepped).
        stage_epochs, stage_lr, stage_optimizer, lr_decay: the block-wise schedule: epochs per stage
            (the authors: 20), learning rate per stage (the authors': :data:`AUTHORS_STAGE_LR`),
            ``torch.optim`` class name and arguments (the authors: Adam, weight decay 1e-4), and
            the factor the learning rate is multiplied by after each epoch (the authors: 0.9).
        clip_grad: max gradient norm, applied to each stage's parameters on their own (``None``:
            no clipping). Global clipping in ``optim_wrapper`` is refused: it would couple the
            stages.
    """

    name = 'dna'
    final_pick = 'dna'
    #: ``history`` holds (step, MACs, summed distillation loss) of every trained path
    history_label = 'summed distillation loss on its batch'

    def __init__(self, supernet: nn.Module, *, teacher: dict, project: str = 'auto', stage0_input: str = 'auto',
                 score_batches: int | None = None, rating: str = 'relative_l1',
                 cell_depths: 'str | Sequence[int] | Sequence[Sequence[int]]' = 'all',
                 schedule: str = 'concurrent', stage_epochs: 'int | Sequence[int]' = 20,
                 stage_lr: 'float | Sequence[float] | None' = None, stage_optimizer: dict | None = None,
                 lr_decay: float = 0.9, clip_grad: float | None = None, **kw: Any) -> None:
        super().__init__(supernet, **kw)
        if project not in ('auto', 'always'):
            raise ConfigError(f"dna project={project!r}: 'auto' or 'always'")
        if stage0_input not in ('auto', 'student_stem'):
            raise ConfigError(f"dna stage0_input={stage0_input!r}: 'auto' or 'student_stem'")
        if rating not in RATINGS:
            raise ConfigError(f"dna rating={rating!r}: one of {', '.join(RATINGS)}")
        if schedule not in ('concurrent', 'blockwise'):
            raise ConfigError(f"dna schedule={schedule!r}: 'concurrent' or 'blockwise'")
        if clip_grad is not None and not float(clip_grad) > 0:
            raise ConfigError(f'dna clip_grad={clip_grad!r}: a positive max norm, or None')
        self.teacher: TeacherFeatures = build_teacher(teacher, supernet.space, supernet.resolution)
        if stage0_input == 'student_stem':
            self.teacher.taps[0] = None
            self.teacher.channels[0] = None
        self.bridges = StageBridges(stage_in_channels(supernet), [st.out_channels for st in supernet.space.stages],
                                    self.teacher.channels, always=project == 'always')
        self.score_batches = score_batches
        self.depths = tuple(supernet.depths)
        self.rating = rating
        self.cell_depths = self._cell_depths(supernet, cell_depths)
        n = len(self.depths)
        self.schedule = schedule
        self.stage_epochs = _per_stage(stage_epochs, n, 'stage_epochs', int)
        if any(e < 1 for e in self.stage_epochs):
            raise ConfigError(f'dna stage_epochs={stage_epochs!r}: at least 1 epoch per stage')
        lr = stage_lr if stage_lr is not None else [AUTHORS_STAGE_LR[min(s, len(AUTHORS_STAGE_LR) - 1)]
                                                    for s in range(n)]
        self.stage_lr = _per_stage(lr, n, 'stage_lr', float)
        self.stage_optimizer = dict(stage_optimizer or {'type': 'Adam', 'weight_decay': 1e-4, 'eps': 1e-8})
        self.lr_decay = float(lr_decay)
        self.clip_grad = None if clip_grad is None else float(clip_grad)
        self._opt: torch.optim.Optimizer | None = None  # block-wise: the current stage's optimizer ...
        self._opt_stage: int | None = None              # ... and its stage
        self._pending_opt: dict[str, Any] | None = None  # a resumed optimizer state, applied when rebuilt
        self.trained_steps = [0] * n                     # steps each stage has trained (checked before rating)

    @staticmethod
    def _cell_depths(supernet: nn.Module, spec: Any) -> list[list[int]]:
        stages = supernet.space.stages
        if spec == 'all':
            return [list(range(st.min_depth, d + 1)) for st, d in zip(stages, supernet.depths)]
        if isinstance(spec, (str, int)) or not isinstance(spec, (list, tuple)) or not spec:
            raise ConfigError(f"dna cell_depths={spec!r}: 'all', a list of depths, or one list per stage")
        per = [list(x) for x in spec] if isinstance(spec[0], (list, tuple)) else [list(spec)] * len(stages)
        if len(per) != len(stages):
            raise ConfigError(f'dna cell_depths: {len(per)} lists for {len(stages)} stages')
        out = []
        for s, (ds, st, d) in enumerate(zip(per, stages, supernet.depths)):
            ds = sorted({int(x) for x in ds})
            if not ds or ds[0] < st.min_depth or ds[-1] > d:
                raise ConfigError(f'dna cell_depths: stage {s + 1} asks for depths {ds}; a cell of this supernet '
                                  f'has {st.min_depth}..{d} layers (the space\'s min_depth .. the supernet\'s depth '
                                  f'{d}; build a deeper supernet with model.depths for deeper cells)')
            out.append(ds)
        return out

    # ---- training --------------------------------------------------------------------------------
    def trainable_modules(self) -> dict[str, nn.Module]:
        return {'dna': self.bridges}

    def stage_of_epoch(self, epoch: int) -> int:
        """The stage the block-wise schedule trains in ``epoch`` (0-based)."""
        ends = np.cumsum(self.stage_epochs)
        s = int(np.searchsorted(ends, epoch, side='right'))
        if s >= len(ends):
            raise ConfigError(f"dna schedule='blockwise' trains {len(ends)} stages for {list(self.stage_epochs)} "
                              f'epochs (sum {int(ends[-1])}), but the loop is in epoch {epoch + 1}: set '
                              f'train_cfg.max_epochs={int(ends[-1])} (an EpochBasedTrainLoop)')
        return s

    def stage_params(self, supernet: nn.Module, s: int) -> list[nn.Parameter]:
        """What stage ``s`` trains: its layers, its bridges, and (stage 1 on the image) the student stem.

        The bridges are the model's ``strategy_modules['dna']`` (the same module objects).
        """
        sn, br = supernet, self.bridges
        mods = [sn.blocks[s + 1], br.inp[s], br.out[s]]
        if s == 0 and self.teacher.taps[0] is None:
            mods += [sn.conv_stem, sn.bn1, sn.blocks[0]]
        return [p for m in mods for p in m.parameters() if p.requires_grad]

    def forward(self, model: nn.Module, inputs: tuple, path: Any) -> torch.Tensor:
        """Distillation losses of the path's trained stages (called through the model, so DDP syncs the grads).

        ``inputs``: ``(images, teacher maps)``; ``path``: ``(code, cell depth per stage, stages to train)``.
        """
        images, maps = inputs
        code, depths, stages = path
        sn = model.supernet
        bridges = model.strategy_modules['dna']
        ops = sn.parse_path(code)
        return torch.stack([F.mse_loss(run_stage(sn, bridges, s, ops[s][:depths[s]], maps, images), maps[s + 1])
                            for s in stages])

    def _sample_depths(self, device: torch.device) -> list[int]:
        d = [ds[int(self.sampler.rng.integers(len(ds)))] for ds in self.cell_depths]
        return [int(x) for x in D.broadcast_(torch.as_tensor(d, dtype=torch.int64, device=device)).tolist()]

    def train_step(self, ctx: StepContext) -> dict[str, float]:
        x = ctx.inputs
        self.teacher.to(x.device)
        maps = self.teacher(x)
        code = self.sample(x.device)
        depths = self._sample_depths(x.device)
        n = len(self.depths)
        stages = [self.stage_of_epoch(ctx.epoch)] if self.schedule == 'blockwise' else list(range(n))
        if getattr(ctx.optim_wrapper, 'clip_grad_kwargs', None):
            raise ConfigError('dna: optim_wrapper.clip_grad clips all stages by one global norm, which couples '
                              'stages that train independently; remove it and set model.strategy.clip_grad '
                              '(a max norm per stage)')
        losses = ctx.forward((x, maps), (code, depths, stages), mode='strategy')
        for s in stages:
            self.trained_steps[s] += 1
        loss = losses.sum()
        log: dict[str, float] = {}
        if self.schedule == 'blockwise':
            log['stage_lr'] = self._blockwise_update(ctx, loss, stages[0])
        elif self.clip_grad is None:
            ctx.optim_wrapper.update_params(loss)
        else:
            ow = ctx.optim_wrapper
            ow.backward(loss)
            if getattr(ow, 'loss_scaler', None) is not None:
                ow.loss_scaler.unscale_(ow.optimizer)
            for s in stages:
                torch.nn.utils.clip_grad_norm_(self.stage_params(ctx.supernet, s), self.clip_grad)
            ow.step()
            ow.zero_grad()
        per_stage = losses.detach().clone()
        if D.is_dist():
            torch.distributed.all_reduce(per_stage)
            per_stage /= torch.distributed.get_world_size()
        per_stage = per_stage.cpu().tolist()
        macs = int(self.sampler.table.fixed_macs) + sum(
            int(stage_macs(ctx.supernet, s, [sn_ops[:depths[s]]])[0])
            for s, sn_ops in enumerate(ctx.supernet.parse_path(code)))
        self.record(ctx.step, macs, float(sum(per_stage)))
        log.update({'loss': float(sum(per_stage)), 'path_mmacs': macs / 1e6})
        if self.schedule == 'blockwise':       # one stage at a time: per-stage keys would keep stale values in the log
            log.update(stage=float(stages[0] + 1), depth=float(depths[stages[0]]))
        else:
            log.update({f'loss_stage{s + 1}': v for s, v in zip(stages, per_stage)})
            log.update({f'depth_stage{s + 1}': float(depths[s]) for s in stages})
        return log

    def _blockwise_update(self, ctx: StepContext, loss: torch.Tensor, s: int) -> float:
        """One step of stage ``s``'s own optimizer (built fresh when the stage starts, as the authors do)."""
        if getattr(ctx.optim_wrapper, 'loss_scaler', None) is not None:
            raise ConfigError("dna schedule='blockwise' steps its own optimizer in fp32; run without --amp")
        params = self.stage_params(ctx.supernet, s)
        if self._opt is None or self._opt_stage != s:
            cfg = dict(self.stage_optimizer)
            kind = cfg.pop('type', 'Adam')
            cls = getattr(torch.optim, kind, None)
            if cls is None:
                raise ConfigError(f'dna stage_optimizer type={kind!r}: not a torch.optim optimizer')
            wd = cfg.pop('weight_decay', 0.0)
            groups = [{'params': [p for p in params if p.ndim <= 1], 'weight_decay': 0.0},   # BN and biases: no
                      {'params': [p for p in params if p.ndim > 1], 'weight_decay': wd}]     # decay (the authors')
            try:
                self._opt, self._opt_stage = cls(groups, lr=self.stage_lr[s], **cfg), s
            except (TypeError, ValueError) as e:
                raise ConfigError(f'dna stage_optimizer={self.stage_optimizer!r}: {e}') from None
            if self._pending_opt is not None and self._pending_opt['stage'] == s:
                self._opt.load_state_dict(self._pending_opt['state'])
            self._pending_opt = None
        start = int(np.sum(self.stage_epochs[:s]))
        lr = self.stage_lr[s] * self.lr_decay ** (ctx.epoch - start)        # the authors' step schedule
        for g in self._opt.param_groups:
            g['lr'] = lr
        self._opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.clip_grad is not None:
            torch.nn.utils.clip_grad_norm_(params, self.clip_grad)
        self._opt.step()
        self._opt.zero_grad(set_to_none=True)
        return lr

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state['trained_steps'] = list(self.trained_steps)
        if self._opt is not None:
            state['stage_optimizer'] = {'stage': self._opt_stage, 'state': self._opt.state_dict()}
        elif self._pending_opt is not None:
            state['stage_optimizer'] = self._pending_opt
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.trained_steps = list(state.get('trained_steps', self.trained_steps))
        self._opt, self._opt_stage = None, None
        self._pending_opt = state.get('stage_optimizer')

    # ---- final pick ------------------------------------------------------------------------------
    def candidates(self) -> list[list[tuple[int, ...]]]:
        """Per stage every cell the final search rates: each depth of ``cell_depths``, every op sequence."""
        n_ops = len(self.sampler.space.ops)
        return [stage_candidates(n_ops, ds) for ds in self.cell_depths]

    @torch.no_grad()
    def score_stages(self, supernet: nn.Module, batches: Iterable[Batch],
                     candidates: Sequence[Sequence[tuple[int, ...]]] | None = None) -> list[np.ndarray]:
        """Mean rating (``self.rating``) of each candidate cell of each stage on ``batches``.

        BN uses each batch's statistics. The mean is over batches, weighted by their images (the
        authors' ``AverageMeter``). ``candidates``: per stage the op sequences (of any cell depth)
        to rate (default: :meth:`candidates`). Under torch.distributed every rank must call it
        with its share of the batches: the sums are reduced, so every rank returns the ratings
        over all ranks' images.
        """
        if candidates is None:
            candidates = self.candidates()
        rate = RATINGS[self.rating]
        modules = [supernet, self.bridges]
        saved = [{k: v.clone() for k, v in m.named_buffers()} for m in modules]
        modes = [m.training for m in modules]
        device = next(supernet.parameters()).device
        sums = torch.zeros(sum(map(len, candidates)) + 1, dtype=torch.float64, device=device)  # last: images
        try:
            for m in modules:
                m.train()
            for x, _ in batches:
                self.teacher.to(x.device)
                maps = self.teacher(x)
                n, k = int(x.shape[0]), 0
                for s, cands in enumerate(candidates):
                    for ops in cands:
                        out = run_stage(supernet, self.bridges, s, ops, maps, x)
                        sums[k] += rate(out, maps[s + 1]).double() * n
                        k += 1
                sums[-1] += n
        finally:
            for m, st, mode in zip(modules, saved, modes):
                m.load_state_dict(st, strict=False)
                m.train(mode)
        if D.is_dist():
            torch.distributed.all_reduce(sums)
        sums = sums.cpu().numpy()
        if sums[-1] == 0:
            raise ConfigError('DNA scoring got no held-out images (search_val_dataloader is empty)')
        bounds = np.cumsum([0] + [len(c) for c in candidates])
        return [sums[a:b] / sums[-1] for a, b in zip(bounds[:-1], bounds[1:])]

    def final_search(self, supernet: nn.Module, batches: Iterable[Batch], work_dir: 'str | Path',
                     log: Callable[[str], None] = print) -> tuple[Arch, dict[str, Any]]:
        """Rate every cell of every stage, then pick the best combination inside the MACs range.

        Runs on every rank, each on its share of the held-out batches (see :meth:`score_stages`).
        Rank 0 writes ``dna_scores.json`` (every cell's depth, ops, MACs and rating per stage, and
        the pick) in ``work_dir``; returns the arch and a summary.
        """
        sp = supernet.space
        idle = [s + 1 for s, k in enumerate(self.trained_steps) if k == 0]
        if idle and self.schedule == 'blockwise' and any(self.trained_steps):
            raise ConfigError(f"dna schedule='blockwise': stage(s) {idle} never trained (steps per stage "
                              f'{self.trained_steps}); the loop must run stage_epochs per stage: set '
                              f'train_cfg.max_epochs={int(np.sum(self.stage_epochs))}')
        cands = self.candidates()
        log(f'DNA: rating {sum(map(len, cands))} stage cells ({" + ".join(str(len(c)) for c in cands)}; depths '
            f'{self.cell_depths}) by {self.rating} on held-out batches'
            + (f' (at most {self.score_batches})' if self.score_batches else ''))
        losses = self.score_stages(supernet, islice(batches, self.score_batches), cands)
        macs = [stage_macs(supernet, s, c) for s, c in enumerate(cands)]
        table = cost_table(sp, supernet.resolution, supernet.num_classes)
        latency = None
        if self.latency_range is not None:      # a second limit of the knapsack (docs/latency.md)
            lat = self.latency_table
            empty = float(lat.predict_codes(np.full(sp.max_layers, -1, dtype=np.int8)))
            latency = ([stage_latency(lat, sp, s, c) for s, c in enumerate(cands)], self.latency_range, empty)
        best = best_combination(macs, losses, self.macs_range, fixed_macs=int(table.fixed_macs), latency=latency)
        arch = Arch(tuple(tuple(sp.ops[j] for j in cands[s][c]) for s, c in enumerate(best.choice)),
                    supernet.resolution, supernet.num_classes, sp)
        if arch.macs != best.macs:                    # the per-stage sums and the arch's own count must agree
            raise AssertionError(f'DNA: combination MACs {best.macs} != arch MACs {arch.macs}')
        info = {'rating': self.rating, 'loss': best.loss,
                'stage_losses': [float(losses[s][c]) for s, c in enumerate(best.choice)],
                'depths': list(arch.depths), 'cell_depths': self.cell_depths, 'macs': best.macs,
                'candidates_scored': int(sum(map(len, cands))), 'teacher': self.teacher.name,
                'teacher_maps': self.teacher.taps, 'schedule': self.schedule,
                **({} if best.latency is None else {'latency_ms': best.latency})}
        if D.rank() == 0:
            write_scores(Path(work_dir) / SCORES_FILE, sp, cands, macs, losses, best, arch, self.macs_range,
                         int(table.fixed_macs), self.teacher, self.rating)
        log(f'DNA: best combination {arch} (depths {arch.depths}) with summed {self.rating} {best.loss:.5f}, '
            f'{arch.macs / 1e6:.2f}M MACs (range {self.macs_range[0] / 1e6:.2f}M-{self.macs_range[1] / 1e6:.2f}M) '
            f'-> {SCORES_FILE}')
        return arch, info

    def arch_scores(self, supernet: nn.Module, codes: np.ndarray, batches: Iterable[Batch]) -> np.ndarray:
        """DNA's score of each encoded path: the sum of its stages' ratings (``self.rating``; lower is better).

        Paths may be shallower than the supernet (a depth-d stage is rated as the depth-d cell).
        Only the op sequences the paths use are rated, each once.
        """
        paths = [supernet.parse_path(c) for c in np.asarray(codes)]
        uniq = [sorted({p[s] for p in paths}, key=lambda c: (len(c), c)) for s in range(len(self.depths))]
        losses = self.score_stages(supernet, batches, uniq)
        index = [{ops: i for i, ops in enumerate(u)} for u in uniq]
        return np.asarray([sum(float(losses[s][index[s][p[s]]]) for s in range(len(p))) for p in paths])


def write_scores(path: Path, space: Any, cands: Sequence[Sequence[tuple[int, ...]]], macs: Sequence[np.ndarray],
                 losses: Sequence[np.ndarray], best: Combination, arch: Arch, macs_range: tuple[float, float],
                 fixed_macs: int, teacher: TeacherFeatures, rating: str = 'mse') -> None:
    """Per stage every cell (depth, ops, MACs, rating; best first) and the chosen combination, atomically."""
    stages = []
    for s, (cs, m, v) in enumerate(zip(cands, macs, losses)):
        order = np.argsort(v, kind='stable')
        chosen = cs[best.choice[s]]
        stages.append({'stage': s + 1, 'chosen': [space.ops[j].name for j in chosen], 'chosen_depth': len(chosen),
                       'depths': sorted({len(c) for c in cs}),
                       'candidates': [{'depth': len(cs[i]), 'ops': [space.ops[j].name for j in cs[i]],
                                       'macs': int(m[i]), 'loss': float(v[i])} for i in order]})
    data = {'strategy': 'dna', 'rating': rating, 'teacher': teacher.name, 'teacher_maps': teacher.taps,
            'macs_range': [float(macs_range[0]), float(macs_range[1])], 'fixed_macs': fixed_macs,
            'best': {'arch': arch.to_dict(), 'loss': best.loss, 'macs': best.macs}, 'stages': stages}
    atomic_write_text(path, json.dumps(data, indent=1) + '\n')


__all__ = ['AUTHORS_STAGE_LR', 'DNA', 'RATINGS', 'StageBridges', 'relative_l1', 'run_stage', 'stage_candidates',
           'stage_in_channels', 'stage_latency', 'stage_macs', 'write_scores']
