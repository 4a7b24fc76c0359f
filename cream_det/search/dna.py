"""DNA: block-wise supervised search with knowledge distillation (Li et al., CVPR 2020), as a strategy.

The supernet's searchable stages are DNA's blocks. Each step, every stage ``s`` runs one uniformly
sampled op per layer on the **teacher's** feature map before the stage and is trained to reproduce
the teacher's map after it (mean squared error). The inputs are the teacher's detached maps, so the
stages' gradients are independent: all stages train in the same step from one summed loss, exactly
as if each trained alone (they could as well train on different machines).

After training, every op sequence of every stage (``n_ops ** depth`` per stage) is scored by its
distillation loss on held-out batches, and the network is the combination of one candidate per
stage with the lowest summed loss inside the MACs range — found exactly
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
from . import distributed as D
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


def stage_candidates(n_ops: int, depth: int) -> list[tuple[int, ...]]:
    """Every op sequence of a stage of ``depth`` layers (DNA scores them all)."""
    return list(itertools.product(range(n_ops), repeat=depth))


def stage_macs(supernet: nn.Module, stage: int, cands: Sequence[Sequence[int]]) -> np.ndarray:
    """Exact MACs of each candidate op sequence of ``stage`` (from the space's cost table)."""
    sp = supernet.space
    table = cost_table(sp, supernet.resolution, supernet.num_classes)
    off = sum(st.max_depth for st in sp.stages[:stage])
    c = np.asarray(cands, dtype=np.int64).reshape(len(cands), -1)
    rows = off + np.arange(c.shape[1])
    return table.macs[rows[None, :], c].sum(axis=1)


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
    """

    name = 'dna'
    final_pick = 'dna'
    #: ``history`` holds (step, MACs, summed distillation loss) of every trained path
    history_label = 'summed distillation loss on its batch'

    def __init__(self, supernet: nn.Module, *, teacher: dict, project: str = 'auto', stage0_input: str = 'auto',
                 score_batches: int | None = None, **kw: Any) -> None:
        super().__init__(supernet, **kw)
        if project not in ('auto', 'always'):
            raise ConfigError(f"dna project={project!r}: 'auto' or 'always'")
        if stage0_input not in ('auto', 'student_stem'):
            raise ConfigError(f"dna stage0_input={stage0_input!r}: 'auto' or 'student_stem'")
        self.teacher: TeacherFeatures = build_teacher(teacher, supernet.space, supernet.resolution)
        if stage0_input == 'student_stem':
            self.teacher.taps[0] = None
            self.teacher.channels[0] = None
        self.bridges = StageBridges(stage_in_channels(supernet), [st.out_channels for st in supernet.space.stages],
                                    self.teacher.channels, always=project == 'always')
        self.score_batches = score_batches
        self.depths = tuple(supernet.depths)

    # ---- training --------------------------------------------------------------------------------
    def trainable_modules(self) -> dict[str, nn.Module]:
        return {'dna': self.bridges}

    def forward(self, model: nn.Module, inputs: tuple[torch.Tensor, list], path: Any) -> torch.Tensor:
        """Per-stage distillation losses of one path (called through the model, so DDP syncs the grads)."""
        images, maps = inputs
        sn = model.supernet
        bridges = model.strategy_modules['dna']
        return torch.stack([F.mse_loss(run_stage(sn, bridges, s, ops, maps, images), maps[s + 1])
                            for s, ops in enumerate(sn.parse_path(path))])

    def train_step(self, ctx: StepContext) -> dict[str, float]:
        x = ctx.inputs
        self.teacher.to(x.device)
        maps = self.teacher(x)
        code = self.sample(x.device)
        losses = ctx.forward((x, maps), code, mode='strategy')
        loss = losses.sum()
        ctx.optim_wrapper.update_params(loss)
        per_stage = losses.detach().clone()
        if D.is_dist():
            torch.distributed.all_reduce(per_stage)
            per_stage /= torch.distributed.get_world_size()
        per_stage = per_stage.cpu().tolist()
        macs = self.macs_of(code)
        self.record(ctx.step, macs, float(sum(per_stage)))
        log = {'loss': float(sum(per_stage)), 'path_mmacs': macs / 1e6}
        log.update({f'loss_stage{s + 1}': v for s, v in enumerate(per_stage)})
        return log

    # ---- final pick ------------------------------------------------------------------------------
    @torch.no_grad()
    def score_stages(self, supernet: nn.Module, batches: Iterable[Batch],
                     candidates: Sequence[Sequence[tuple[int, ...]]] | None = None) -> list[np.ndarray]:
        """Mean distillation loss of each candidate of each stage on ``batches`` (batch-statistics BN).

        ``candidates``: per stage the op sequences to score (default: all of them). Under
        torch.distributed every rank must call it with its share of the batches: the sums are
        reduced, so every rank returns the losses over all ranks' images.
        """
        if candidates is None:
            candidates = [stage_candidates(len(supernet.space.ops), d) for d in self.depths]
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
                        sums[k] += F.mse_loss(out, maps[s + 1]).double() * n
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
        """Score every candidate of every stage, then pick the best combination inside the MACs range.

        Runs on every rank, each on its share of the held-out batches (see :meth:`score_stages`).
        Rank 0 writes ``dna_scores.json`` (every candidate's ops, MACs and loss per stage, and the
        pick) in ``work_dir``; returns the arch and a summary.
        """
        sp = supernet.space
        cands = [stage_candidates(len(sp.ops), d) for d in self.depths]
        log(f'DNA: scoring {sum(map(len, cands))} stage candidates ({" + ".join(str(len(c)) for c in cands)}) on '
            f'held-out batches' + (f' (at most {self.score_batches})' if self.score_batches else ''))
        losses = self.score_stages(supernet, islice(batches, self.score_batches), cands)
        macs = [stage_macs(supernet, s, c) for s, c in enumerate(cands)]
        table = cost_table(sp, supernet.resolution, supernet.num_classes)
        best = best_combination(macs, losses, self.macs_range, fixed_macs=int(table.fixed_macs))
        arch = Arch(tuple(tuple(sp.ops[j] for j in cands[s][c]) for s, c in enumerate(best.choice)),
                    supernet.resolution, supernet.num_classes, sp)
        if arch.macs != best.macs:                    # the per-stage sums and the arch's own count must agree
            raise AssertionError(f'DNA: combination MACs {best.macs} != arch MACs {arch.macs}')
        info = {'loss': best.loss, 'stage_losses': [float(losses[s][c]) for s, c in enumerate(best.choice)],
                'macs': best.macs, 'candidates_scored': int(sum(map(len, cands))), 'teacher': self.teacher.name,
                'teacher_maps': self.teacher.taps}
        if D.rank() == 0:
            write_scores(Path(work_dir) / SCORES_FILE, sp, cands, macs, losses, best, arch, self.macs_range,
                         int(table.fixed_macs), self.teacher)
        log(f'DNA: best combination {arch} with summed loss {best.loss:.5f}, {arch.macs / 1e6:.2f}M MACs '
            f'(range {self.macs_range[0] / 1e6:.2f}M-{self.macs_range[1] / 1e6:.2f}M) -> {SCORES_FILE}')
        return arch, info

    def arch_scores(self, supernet: nn.Module, codes: np.ndarray, batches: Iterable[Batch]) -> np.ndarray:
        """DNA's score of each encoded path: the sum of its stages' distillation losses (lower is better).

        Only the op sequences the paths use are scored, each once.
        """
        paths = [supernet.parse_path(c) for c in np.asarray(codes)]
        uniq = [sorted({p[s] for p in paths}) for s in range(len(self.depths))]
        losses = self.score_stages(supernet, batches, uniq)
        index = [{ops: i for i, ops in enumerate(u)} for u in uniq]
        return np.asarray([sum(float(losses[s][index[s][p[s]]]) for s in range(len(p))) for p in paths])


def write_scores(path: Path, space: Any, cands: Sequence[Sequence[tuple[int, ...]]], macs: Sequence[np.ndarray],
                 losses: Sequence[np.ndarray], best: Combination, arch: Arch, macs_range: tuple[float, float],
                 fixed_macs: int, teacher: TeacherFeatures) -> None:
    """Per stage every candidate (ops, MACs, loss; best first) and the chosen combination, atomically."""
    stages = []
    for s, (cs, m, v) in enumerate(zip(cands, macs, losses)):
        order = np.argsort(v, kind='stable')
        stages.append({'stage': s + 1, 'chosen': [space.ops[j].name for j in cs[best.choice[s]]],
                       'candidates': [{'ops': [space.ops[j].name for j in cs[i]], 'macs': int(m[i]),
                                       'loss': float(v[i])} for i in order]})
    data = {'strategy': 'dna', 'teacher': teacher.name, 'teacher_maps': teacher.taps,
            'macs_range': [float(macs_range[0]), float(macs_range[1])], 'fixed_macs': fixed_macs,
            'best': {'arch': arch.to_dict(), 'loss': best.loss, 'macs': best.macs}, 'stages': stages}
    atomic_write_text(path, json.dumps(data, indent=1) + '\n')


__all__ = ['DNA', 'StageBridges', 'run_stage', 'stage_candidates', 'stage_in_channels', 'stage_macs', 'write_scores']
