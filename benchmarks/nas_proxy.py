#!/usr/bin/env python
"""Cream and its peers on a proxy task with signal: supernet convergence, ranking and picks, with seeds.

The task (``--task``) is generated, never downloaded, in the ImageNet folder layout at 32 px: the
cluttered shapes (``cream_det.data.shapes``, 10 classes) or the font glyphs (``cream_det.data.glyphs``,
34 classes drawn in the 21 typefaces matplotlib ships; its own full settings: ``TASK_FULL``). Two stages:

``groundtruth``
    16 archs of one MACs range (``band``: percentiles of the MACs of a one-layer-per-stage supernet),
    spread over their number of layers at the largest expansion (``--gt-select width``, the shapes') or
    kernel (``kernel``, where a kernel can matter) and then their MACs, or over MACs alone (``macs``),
    each trained from scratch with two seeds
    (``ranking_tool.train_standalone``: SGD, warm-up, cosine, clipped gradients). Prints the
    stability of that ground truth and how much of it is "bigger is better"::

        kendall tau seed-vs-seed: ...      (the bar is >= 0.5)
        kendall tau macs-vs-top1: ...

``compare``
    The ground truth (reused when one was made with the same recipe: ``groundtruth/<digest>.json``)
    and, on the same supernet, data, MACs range and number of optimizer steps, one supernet per
    strategy and seed — Cream with the meta matcher, with the top-1 board teacher and with a random
    board teacher, SPOS, DNA (teacher: the space's largest path trained stand-alone), MixPath — each trained by
    ``tools/search.py``'s own code (``run_search``: the Runner, the strategy's final pick, arch.json).
    It reports

    - convergence: the mean inherited top-1 (BN recalibrated) of a fixed set of random in-range
      paths at evenly spaced epochs (DNA: its summed block rating instead: its supernet has no
      trained classifier);
    - ranking: Kendall tau of each supernet's scores of the ground-truth archs against their
      stand-alone top-1 (mean of the ground truth's seeds), mean +- std over seeds;
    - picks: each search's final arch trained stand-alone with the ground truth's recipe.

    and writes ``results.json``, ``results.md`` and ``results.png`` to ``--out``.

Every training is one job: ``--jobs N`` runs N at once, each in its own process; a job's result
is a JSON file under ``--out/jobs``, so an interrupted run picks up where it stopped. ``compare``
runs all its jobs in one pool (a pick starts once its search ends; the ground truth's trainings
fill the workers the last searches leave idle), and its table gives the wall time of a run from
scratch rebuilt from the jobs' measured times, since a 3-hour run may span invocations. The search
held-out images (SPOS's evolution, MixPath's NSGA-II, the convergence and ranking scores) come
from a second generated set, so no pick is chosen on the images its retraining is judged on.

    python benchmarks/nas_proxy.py groundtruth [--jobs 2]       # 16 archs x 2 seeds
    python benchmarks/nas_proxy.py compare --jobs 2             # everything (about 3 h on 2 cores)
    python benchmarks/nas_proxy.py compare --quick              # about a minute: checks the harness
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from cream_det.data.imagenet import CreamImageFolder  # noqa: E402
from cream_det.data import glyphs, shapes  # noqa: E402
from cream_det.models.subnet import HEAD_INITS  # noqa: E402
from cream_det.search.evaluate import accuracy  # noqa: E402
from cream_det.search.ranking import expected_tau, kendall_tau, seed_noise, split_half_taus  # noqa: E402
from cream_det.search.ranking_tool import train_standalone  # noqa: E402
from cream_det.search.teacher import stage_sizes  # noqa: E402
from cream_det.space import CREAM_SPACE, Arch, ArchSampler  # noqa: E402
from cream_det.utils.io import atomic_write_bytes, atomic_write_text, png_bytes  # noqa: E402

# size: px; num_train/num_val: the task (the stand-alone trainings' set); search_train: the supernets' training set, a
# second set of the same generator unless it equals num_train (the supernets' steps are the costly part and do not
# depend on the stand-alone recipe, so a larger stand-alone set leaves them as they are); search_val: the searches'
# held-out set; archs: ground-truth archs, spread over the MACs range between the ``band`` percentiles of the space's
# MACs; paths: the convergence set; epochs, warmup (epochs of linear lr ramp), lr: the stand-alone recipe (ground
# truth, teacher, picks), chosen by what decides a ground truth here, the spread of one arch's seeds: 40,000 images
# seen twice rather than 20,000 seen four times (same steps) took one arch's std over four seeds from 1.9 to 0.77
# points; lr 0.2 rather than 0.1 took two archs' seed-to-seed gaps from 2.4 and 2.1 to 1.0 and 1.1 points (and their
# top-1 up 1.5-2 points; lr 0.05: 87.8 / 93.7); clip: the gradient's global norm is clipped to it (0: not clipped):
# unclipped, 3 of 16 archs lost ~5 points with one seed at lr 0.2, a run whose loss rose for ~300 steps at the peak
# lr; clipped at 5 the same run did not (95.9 against 91.8 %; the arch's other seed: 96.9). head: the
# classifier's init, 'timm' or 'zero' (the classifier starts at zero (``train_standalone``); off, because every arch then learns the task faster and ends
# nearer the ceiling: its ground truth (seeds 0-1) had the same noise (0.73 points) and half the spread (0.37
# against 0.9), tau 0.11). search_epochs: every
# supernet (a multiple of 5: DNA trains its 5 stages one after another), 10 because a single-path supernet sits
# near chance for its first ~1,500 steps: after 5 epochs (3,125 steps) the Cream and SPOS supernets scored the
# convergence paths at 20-23 %, after 10 SPOS's scored them at 60 % (19.6 / 39.3 / 48.7 / 56.8 / 60.4 at epochs
# 2-10, 711 s); points: convergence epochs; calib: BN-recalibration batches per scored path; search_head: the
# supernets' classifier init, 'timm' (the authors') or 'zero' (the authors' range is sized for 1,000 classes; at
# 10 a single-path supernet trained at 18 % after 1,500 steps with it, 46 % from zero: docs/proxy_task.md)
FULL = dict(task='shapes', size=32, num_train=40000, num_val=5000, search_train=40000, search_val=1000, archs=16,
            band=[0.0, 100.0], gt_select='width',
            paths=50, gt_seeds=2, seeds=3, epochs=2, warmup=1.0, clip=5.0, head='timm', search_epochs=10, points=5,
            depths=1, batch=64, lr=0.2, search_lr=0.05, calib=2, search_head='timm')
# the glyphs' full run differs from FULL in: num_val, 10,000 validation images (at ~95 % and 34 classes, 5,000 would
# leave ~0.3 points of a run's noise to which images the set holds); gt_select, 'kernel' (the archs spread over how
# many layers have k7 where a kernel can matter: on the glyphs the kernel is the knob; spread over MACs alone, two
# seeds agreed with tau 0.35, over k7 layers with 0.52; docs/proxy_task.md); search_epochs and search_train, 5 x
# 25,000 images (1,955 steps, a third of the shapes' 6,250): the 3-hour bar on a machine that ran the steps ~1.5x
# slower than on the shapes' day (two epochs of a Cream search of 5 x 40,000 put it at ~1,025 s, 190 of them scoring
# the convergence paths: the whole run at ~3.3 h by that estimate; with 25,000 it measured 2.87 h); search_head,
# 'zero', because with timm's head a SPOS supernet (``learnability --task glyphs --modes per_layer``) trained at
# 10.1 % after 1,500 steps on the 34 classes, from zero at 34.8 % (the authors' head stays the default:
# docs/fidelity.md)
TASK_FULL = {'glyphs': dict(num_val=10000, gt_select='kernel', search_epochs=5, search_train=25000,
                            search_head='zero')}
# QUICK checks the harness, not the ground truth: unclipped, so its few steps move the nets off chance (clipped at 5,
# every quick net stayed at 10 % and every tau was undefined)
QUICK = dict(task='shapes', size=32, num_train=200, num_val=100, search_train=200, search_val=100, archs=4,
             band=[25.0, 75.0], gt_select='macs',
             paths=6, gt_seeds=2, seeds=1, epochs=1, warmup=0.5, clip=0.0, head='timm', search_epochs=5, points=5,
             depths=1, batch=50, lr=0.1, search_lr=0.1, calib=1, search_head='timm')
# what a job's stored result depends on (its digest covers only these, so that a new stand-alone recipe keeps the
# searches and a new search budget keeps the ground truth): a stand-alone training, a search, the ground truth
STANDALONE_KEYS = ('task', 'size', 'num_train', 'num_val', 'epochs', 'warmup', 'clip', 'head', 'batch', 'lr')
SEARCH_KEYS = ('task', 'size', 'search_train', 'search_val', 'paths', 'search_epochs', 'points', 'depths', 'batch',
               'search_lr', 'calib', 'search_head')
GT_KEYS = STANDALONE_KEYS + ('archs', 'band', 'gt_seeds', 'depths', 'gt_select')
# keys added after results were stored under digests without them: a spec holds one only when it is set off this
# default, so that those results keep their digests (and are reused)
LATER_KEYS = {'task': 'shapes', 'gt_select': 'macs', 'head': 'timm', 'search_head': 'timm'}
# the generated sets (cream_det.data): their writer and class count
TASKS = {'shapes': (shapes.make_imagenet_shapes, shapes.NUM_CLASSES),
         'glyphs': (glyphs.make_imagenet_glyphs, glyphs.NUM_CLASSES)}
# gt_select: 'macs', or the op attribute whose largest value the archs are spread over by count of layers first
GT_KNOBS = {'width': 'expansion', 'kernel': 'kernel'}
# the results of the evidence runs, committed (``archive``): a run that spans sessions continues from a fresh clone
ARCHIVE_REL = 'benchmarks/results/nas_proxy'
ARCHIVE = ROOT / ARCHIVE_REL
STRATEGIES = ('cream_meta', 'cream_top1', 'cream_random', 'spos', 'dna', 'mixpath')
DEMO_CONFIG = {'cream_meta': 'cream_demo.py', 'cream_top1': 'cream_demo.py', 'cream_random': 'cream_demo.py',
               'spos': 'spos_demo.py', 'dna': 'dna_demo.py', 'mixpath': 'mixpath_demo.py'}
LARGEST_OP = 5                      # k7e6 in the Cream space's choice order: the DNA teacher is all k7e6


# ---- data ---------------------------------------------------------------------------------------------------
def load(root: Path, split: str, size: int, batch: int, order_seed: int | None = None,
         limit: int | None = None) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The split through the real ImageNet-folder loader (no augmentation), materialised as batches."""
    ds = CreamImageFolder(str(root), split=split, input_size=size, is_training=False, crop_pct=1.0)
    order = (torch.randperm(len(ds), generator=torch.Generator().manual_seed(order_seed)).tolist()
             if order_seed is not None else list(range(len(ds))))
    if limit is not None:
        order = order[:limit]
    items = [ds[i] for i in order]
    x = torch.stack([d['inputs'] for d in items])
    y = torch.as_tensor([int(d['label']) for d in items])
    return [(x[i:i + batch], y[i:i + batch]) for i in range(0, len(y), batch)]


def task_of(p: dict) -> str:
    return p.get('task', LATER_KEYS['task'])


def classes(p: dict) -> int:
    return TASKS[task_of(p)][1]


def make_data(p: dict, out: Path, data: str | None) -> tuple[Path, Path, Path]:
    """The task, the supernets' training set (both ``--data`` when given, else generated under ``out``; the
    same set when ``num_train == search_train``) and the searches' held-out set (always generated)."""
    task = task_of(p)
    root = Path(data) if data else out / f"{task}_{p['size']}px_{p['num_train']}"
    search = Path(data) if data else out / f"{task}_{p['size']}px_{p['search_train']}"
    held = out / f"{task}_{p['size']}px_search_val_{p['search_val']}"
    for path, kw in ((root, dict(num_train=p['num_train'], num_val=p['num_val'], seed=0)),
                     (search, dict(num_train=p['search_train'], num_val=p['num_val'], seed=0)),
                     (held, dict(num_train=classes(p), num_val=p['search_val'], seed=1))):
        if not (path / 'val').is_dir():
            t = time.time()
            TASKS[task][0](path, size=p['size'], **kw)
            seconds = round(time.time() - t, 1)
            print(f'data: {path} generated in {seconds:.1f} s', flush=True)
            atomic_write_text(out / 'data_seconds.json', json.dumps({**data_seconds(out), path.name: seconds}, indent=2)
                              + '\n')
    return root, search, held


def data_seconds(out: Path) -> dict[str, float]:
    """The generation time of each set made under ``out``, for the wall time of a run from scratch (``compare``)."""
    record = out / 'data_seconds.json'
    return json.loads(record.read_text()) if record.is_file() else {}


def job_wall(res: dict) -> float:
    """A job's wall time: its process's (start and data loading too), or its own seconds when larger (a resumed
    search's last process is shorter than the epochs it kept) or when the process time was not recorded."""
    return max(res['seconds'], res.get('process_seconds', 0.0))


def first_ready(pending: list[str], done: set[str], needs: dict[str, tuple[str, ...]]) -> str | None:
    """The job a free worker takes: the first in order whose needs are all done (``Pool`` and ``makespan``)."""
    return next((n for n in pending if all(d in done for d in needs.get(n, ()))), None)


def makespan(seconds: dict[str, float], workers: int, needs: dict[str, tuple[str, ...]] | None = None) -> float:
    """The wall time of jobs of these durations (in this order) run ``workers`` at a time as ``Pool`` runs them:
    a run's wall time rebuilt from its jobs' measured seconds, for a run made over several invocations."""
    needs = needs or {}
    pending, finish, free = list(seconds), {}, [0.0] * max(1, workers)
    while pending:
        w = free.index(min(free))
        t = free[w]
        while (name := first_ready(pending, {n for n, f in finish.items() if f <= t}, needs)) is None:
            later = [f for f in finish.values() if f > t]
            if not later:
                raise ValueError(f'jobs {pending} wait on jobs that are not given')
            t = min(later)                     # the worker waits for the next job to end
        pending.remove(name)
        finish[name] = free[w] = t + seconds[name]
    return max(finish.values(), default=0.0)


def arch_sets(p: dict) -> tuple[tuple[float, float], list[Arch], list[Arch]]:
    """The MACs range (the ``band`` percentiles of the space's MACs), the ground-truth archs and the
    convergence paths."""
    depths = (p['depths'],) * len(CREAM_SPACE.stages)
    every = ArchSampler(CREAM_SPACE, p['size'], classes(p), depths=depths, seed=123)
    lo, hi = (float(v) for v in np.percentile([every.sample().macs for _ in range(400)], p['band']))
    gt = ArchSampler(CREAM_SPACE, p['size'], classes(p), depths=depths, macs_range=(lo, hi), seed=7)
    conv = ArchSampler(CREAM_SPACE, p['size'], classes(p), depths=depths, macs_range=(lo, hi), seed=11)
    # the ground truth spreads evenly over the range's MACs (the middle of each of ``archs`` equal-count slices of
    # a large in-range sample): uniform draws crowd the middle, where archs differ least. gt_select 'width' (FULL's)
    # spreads it first over the number of layers at the space's widest expansion (0 to all), the knob the earlier
    # measurements pointed at on the shapes at 32 px (uniform archs: k3e4 91.0 / 92.1 %, k3e6 96.1 / 96.5 %), then
    # over MACs within each count: its two seeds agreed with tau 0.54 (MACs vs top-1: 0.02), those spread over MACs
    # alone with 0.37, though four seeds put the tau two seeds agree with on average at 0.20. 'kernel' does the same
    # over the layers at the largest kernel, the knob of the glyphs, whose uniform archs gain 2-3 points from k3 to
    # k7 and 0.5-1.6 from e4 to e6 (docs/proxy_task.md)
    pool = sorted((gt.decode(c) for c in gt.sample_codes(64 * p['archs'])), key=lambda a: a.macs)
    knob = GT_KNOBS.get(p.get('gt_select', 'macs'))
    if knob is not None:
        groups: dict[int, list[Arch]] = {}
        for a in pool:
            groups.setdefault(top_layers(a, knob, p['size']), []).append(a)
        sizes = [len(part) for part in np.array_split(np.arange(p['archs']), len(groups))]
        spread = sorted((a for k, n in zip(sorted(groups), sizes) for a in evenly(groups[k], n)), key=lambda a: a.macs)
    else:
        spread = evenly(pool, p['archs'])
    return (lo, hi), spread, [conv.sample() for _ in range(p['paths'])]


def top_layers(a: Arch, knob: str, size: int) -> int:
    """How many of ``a``'s layers hold the space's largest ``knob`` ('expansion' or 'kernel') where it can matter.

    A k x k depthwise conv sees at most (2H-1) x (2H-1) of an H x H map, so where 2H-1 is no larger than the space's
    smallest kernel (the 2x2 maps of the last two stages at 32 px) every kernel of the space is the same conv: those
    layers would only blur the count. Expansion matters at every size."""
    top = max(getattr(op, knob) for op in a.space.ops)
    smallest_kernel = min(op.kernel for op in a.space.ops)
    first, after = stage_sizes(a.space, size)
    entering = [first, *after[:-1]]                     # the map a stage's first (strided) layer sees
    count = 0
    for s, ops in enumerate(a.stages):
        for i, op in enumerate(ops):
            h = after[s] if i else entering[s]
            count += getattr(op, knob) == top and (knob != 'kernel' or 2 * h - 1 > smallest_kernel)
    return count


def evenly(items: list, n: int) -> list:
    """``n`` items spread evenly over ``items`` (the middle of each of ``n`` equal-count slices)."""
    if len(items) < n:
        raise SystemExit(f'{n} ground-truth archs asked of a group of {len(items)}: ask for fewer (--archs)')
    step = len(items) / n
    return [items[int((i + 0.5) * step)] for i in range(n)]


def teacher_arch(p: dict) -> Arch:
    depths = (p['depths'],) * len(CREAM_SPACE.stages)
    code = ArchSampler(CREAM_SPACE, p['size'], classes(p), depths=depths, seed=0).sample().encode()
    return Arch.decode(np.where(code >= 0, LARGEST_OP, code), CREAM_SPACE, p['size'], classes(p))


# ---- jobs ---------------------------------------------------------------------------------------------------
def standalone_job(spec: dict) -> dict:
    """Train one arch from scratch with the ground truth's recipe; top-1 on the task's val split."""
    p = spec['params']
    torch.set_num_threads(1)
    train = load(Path(spec['data']), 'train', p['size'], p['batch'], order_seed=spec['seed'])
    val = load(Path(spec['data']), 'val', p['size'], 256)
    arch = Arch.from_dict(spec['arch'])
    t = time.time()
    net = train_standalone(arch, train, p['epochs'], lr=p['lr'], seed=spec['seed'], warmup_epochs=p.get('warmup', 0.0),
                           clip_grad=p.get('clip', 0.0), head_init=p.get('head', 'timm'))
    out = {'top1': accuracy(net, val), 'seconds': round(time.time() - t, 1)}
    if spec.get('save'):
        from cream_det.models.checkpoint import save_subnet_checkpoint
        save_subnet_checkpoint(spec['save'], net.state_dict(), arch, top1=out['top1'])
    return out


def search_config(spec: dict) -> Any:
    """The demo config of the strategy, moved onto the proxy task, its range, budget and seed."""
    from mmengine.config import Config
    p, name, seed = spec['params'], spec['strategy'], spec['seed']
    cfg = Config.fromfile(str(ROOT / 'configs/search' / DEMO_CONFIG[name]))
    epochs = p['search_epochs']
    iters = -(-p['search_train'] // p['batch'])
    cfg.model.update(macs_range=tuple(spec['macs_range']), resolution=p['size'], num_classes=classes(p),
                     depths=(p['depths'],) * len(CREAM_SPACE.stages), seed=seed,
                     head_init=p.get('search_head', 'timm'))
    st = cfg.model.strategy
    if name.startswith('cream'):
        # the authors' board of 10 and warm-up of 1/6 of the search (20 of 120 epochs); about six meta updates
        # per epoch as theirs (every 200 of ~1250 iterations); the matcher's lr scaled to the distillation steps
        # as the demo's (lr x steps ~ 12.5 on ImageNet at 1e-4 x 125,000)
        distill_steps = max(1, (epochs - max(1, epochs // 6)) * iters)
        st.update(board_size=10, warmup_epochs=max(1, epochs // 6), teacher=name.split('_')[1],
                  meta_interval=max(2, iters // 6), meta_lr=min(1e-2, 12.5 / distill_steps))
    elif name == 'dna':
        st.teacher = dict(checkpoint=spec['teacher'])       # replaced, not merged into the demo's hint
        st.stage_epochs = epochs // 5
    elif name == 'mixpath':
        cfg.pareto.update(population=max(8, p['paths'] // 3), generations=4, calib_batches=p['calib'])
    if name == 'spos':
        cfg.evolution.update(population=max(8, p['paths'] // 3), generations=4, calib_batches=p['calib'])
    for key in ('train_dataloader', 'search_val_dataloader'):
        loader = cfg[key]
        loader.dataset.update(root=spec['data'] if key == 'train_dataloader' else spec['held_out'],
                              input_size=p['size'])
        loader.batch_size = p['batch'] if key == 'train_dataloader' else 256
    cfg.train_cfg.max_epochs = epochs
    if name == 'dna':
        cfg.param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=True, begin=0, end=epochs)]
    else:
        cfg.optim_wrapper.optimizer.lr = p['search_lr']
        cfg.param_scheduler = [dict(type='LinearLR', start_factor=1.0, end_factor=0.0, by_epoch=True, begin=0,
                                    end=epochs, convert_to_iter_based=True)]
    cfg.randomness = dict(seed=seed, diff_rank_seed=False)
    cfg.work_dir = spec['work_dir']
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=100)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1, max_keep_ckpts=1)
    every = max(1, epochs // p['points'])
    cfg.custom_hooks = [dict(type='SearchStateHook'), dict(type='SearchOutputsHook', plot=False),
                        dict(type='ProxyConvergenceHook', spec=spec, every=every)]
    return cfg


def scorer(spec: dict, model: Any) -> Callable[[list[Arch]], np.ndarray]:
    """Each arch's score under the supernet as ``tools/compare_strategies.py`` scores it (``path_scores``:
    inherited top-1 after BN recalibration on fixed training batches; minus DNA's summed block rating for
    DNA), on the searches' held-out set, which is read once here."""
    from cream_det.engine.compare import SearchRun, path_scores
    p = spec['params']
    held = load(Path(spec['held_out']), 'val', p['size'], 256)
    calib = load(Path(spec['data']), 'train', p['size'], p['batch'], order_seed=1000, limit=p['calib'] * p['batch'])
    run = SearchRun(Path(spec['work_dir']), None, model)
    return lambda archs: path_scores(run, archs, calib, held)


# when this process's search job started, and how long the epochs of the checkpoint it resumed from took: a search
# interrupted (session end, SIGKILL) and resumed reports the time of the epochs it kept plus the time of its resumption
_INVOCATION = {'t0': time.time(), 'before': 0.0}


def register_hook() -> None:
    from mmengine.hooks import Hook
    from mmengine.registry import HOOKS

    @HOOKS.register_module(force=True)
    class ProxyConvergenceHook(Hook):
        """Scores the fixed convergence paths every ``every`` epochs into ``convergence.json``; keeps the search's
        running time per epoch in ``elapsed.json``."""
        priority = 'LOW'

        def __init__(self, spec: dict, every: int) -> None:
            self.spec, self.every = spec, every
            self.score: Callable[[list[Arch]], np.ndarray] | None = None     # built (data read) at the first point

        @staticmethod
        def _elapsed(runner: Any) -> tuple[Path, dict[str, float]]:
            path = Path(runner.work_dir) / 'elapsed.json'
            return path, (json.loads(path.read_text()) if path.is_file() else {})

        def before_train(self, runner: Any) -> None:
            _, history = self._elapsed(runner)
            _INVOCATION['before'] = float(history.get(str(runner.epoch), 0.0))     # 0 for a fresh run

        def after_train_epoch(self, runner: Any) -> None:
            epoch = runner.epoch + 1           # mmengine counts the epoch up after this hook
            path, history = self._elapsed(runner)
            history = {k: v for k, v in history.items() if int(k) < epoch}       # a resumed run rewrites its own
            history[str(epoch)] = round(_INVOCATION['before'] + time.time() - _INVOCATION['t0'], 1)
            atomic_write_text(path, json.dumps(history) + '\n')
            if epoch % self.every:
                return
            model = getattr(runner.model, 'module', runner.model)
            was_training = model.training
            archs = [Arch.from_dict(a) for a in self.spec['paths']]
            self.score = self.score or scorer(self.spec, model)
            scores = self.score(archs)
            model.train(was_training)
            path = Path(runner.work_dir) / 'convergence.json'
            points = json.loads(path.read_text()) if path.is_file() else []
            points = [q for q in points if q['epoch'] < epoch]        # a resumed run rewrites its own
            points.append({'epoch': epoch, 'mean': float(scores.mean()), 'scores': scores.tolist()})
            atomic_write_text(path, json.dumps(points) + '\n')


def claim_work_dir(work: Path, digest: str) -> bool:
    """Make ``work`` this spec's; True when it holds an interrupted run of the same spec to resume.

    A work dir left by another recipe is removed: resuming it would train on under other settings."""
    if work.is_dir() and not made_by(work, digest):
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    atomic_write_text(work / 'spec_digest', digest + '\n')
    return (work / 'last_checkpoint').is_file()


def made_by(work: Path, digest: str) -> bool:
    """True when the work dir is the one of the spec with this digest (its ``spec_digest`` marker)."""
    marker = work / 'spec_digest'
    return marker.is_file() and marker.read_text().strip() == digest


def search_job(spec: dict) -> dict:
    """One supernet, searched as ``tools/search.py`` does; its convergence and its pick (its scores of the
    ground-truth archs are a ``score`` job of their own, from the final checkpoint)."""
    import cream_det  # noqa: F401  (registers the model, hooks and datasets)
    from cream_det.engine.search_run import run_search
    torch.set_num_threads(1)
    register_hook()
    _INVOCATION.update(t0=time.time(), before=0.0)
    work = Path(spec['work_dir'])
    resume = claim_work_dir(work, spec_digest(spec))
    _, summary = run_search(search_config(spec), resume=resume)
    conv = json.loads((work / 'convergence.json').read_text())
    return {'pick': summary['arch'], 'final_pick': summary['final_pick'],
            'convergence': [{'epoch': c['epoch'], 'mean': c['mean']} for c in conv],
            'seconds': round(_INVOCATION['before'] + time.time() - _INVOCATION['t0'], 1)}


def score_job(spec: dict) -> dict:
    """A finished search's scores of the ground-truth archs, from its final checkpoint.

    A job of its own so that a search does not depend on which archs the ground truth holds: choosing
    other ground-truth archs rescores the searches in seconds instead of rerunning them."""
    import cream_det  # noqa: F401
    from cream_det.engine.compare import load_search
    torch.set_num_threads(1)
    register_hook()                            # the work dir's config names the harness's hook
    t0 = time.time()
    search = spec['search']
    if not holds_finished_search(search, spec['search_digest']):
        raise SystemExit(f"{search['work_dir']} holds no finished search of this spec: run its search job first")
    run = load_search(search['work_dir'])
    scores = scorer(search, run.model)([Arch.from_dict(a) for a in spec['gt_archs']])
    return {'gt_scores': scores.tolist(), 'seconds': round(time.time() - t0, 1)}


def holds_finished_search(search: dict, digest: str) -> bool:
    """True when the search's work dir holds this spec's search (not another recipe's), run to its last epoch (not
    interrupted)."""
    work = Path(search['work_dir'])
    last = work / 'last_checkpoint'
    return (made_by(work, digest) and last.is_file()
            and Path(last.read_text().strip()).name == f"epoch_{search['params']['search_epochs']}.pth")


JOBS = {'standalone': standalone_job, 'search': search_job, 'score': score_job}


class Pool:
    """Runs jobs (``--jobs`` at once, each in its own process; in this process with ``--jobs 1``), keeping
    each result in ``jobs/<name>.json`` so that a rerun only does what is missing. A job run with other
    settings under the same name (a pilot recipe's ground truth) first moves the result there to
    ``jobs/kept/<name>.<digest>.json``, where it is still found: trying a recipe does not lose the last one's
    results, nor the measured times a run's wall time is rebuilt from. ``archive`` (``ARCHIVE``: results
    committed to the repository, ``<name>.<digest>.json``) is read too, so that a run longer than a session
    continues in the next one from a fresh clone; only a result of the very same spec is taken from it."""

    def __init__(self, out: Path, jobs: int, archive: Path | None = None) -> None:
        self.dir, self.jobs, self.archive = out / 'jobs', jobs, archive
        self.dir.mkdir(parents=True, exist_ok=True)

    def run(self, named_specs: dict[str, dict | Callable[[dict[str, dict]], dict]],
            needs: dict[str, tuple[str, ...]] | None = None) -> dict[str, dict]:
        """Runs what is not stored yet and returns every job's result.

        ``needs[name]``: jobs (earlier in the order) that must be done before ``name`` starts; a job's spec may be
        a function of their results (a pick's arch is its search's result). One pool for jobs that depend on
        each other keeps both workers busy: a pick starts as soon as its search ends, beside the next search,
        instead of waiting for the slowest search of a phase."""
        needs = needs or {}
        order = list(named_specs)
        for name, deps in needs.items():
            if name not in named_specs or any(d not in order[:order.index(name)] for d in deps):
                raise ValueError(f'job {name} needs {deps}: each must be a job given before it')
        results: dict[str, dict] = {}
        archived = 0
        for name in order:                          # what is stored already (a function spec once its needs are)
            if all(d in results for d in needs.get(name, ())):
                found = self._find(name, self._spec(named_specs[name], needs.get(name, ()), results))
                if found is not None:
                    results[name] = found[1]
                    archived += found[0].parent == self.archive
        todo = [n for n in order if n not in results]
        if archived:
            print(f'{archived} job(s) taken from the committed results in {self.archive}', flush=True)
        if todo:
            print(f'{len(todo)} job(s) to run ({len(order) - len(todo)} done before), {self.jobs} at once', flush=True)
            t0 = time.time()
            self._schedule(todo, named_specs, needs, results)
            print(f'  done in {time.time() - t0:.0f} s', flush=True)
        return {n: results[n] for n in order}

    @staticmethod
    def _spec(spec: dict | Callable[[dict[str, dict]], dict], deps: tuple[str, ...], results: dict) -> dict:
        return spec({d: results[d] for d in deps}) if callable(spec) else spec

    def _schedule(self, todo: list[str], named_specs: dict, needs: dict, results: dict) -> None:
        """``self.jobs`` workers, each taking the first job whose needs are done; a failed job stops new starts and
        raises here once the running ones end (its dependents never start)."""
        pending, running, errors = list(todo), [0], []
        cond = threading.Condition()

        def take() -> tuple[str, dict] | None:
            with cond:
                while not errors and pending:
                    name = first_ready(pending, set(results), needs)
                    if name is not None:
                        pending.remove(name)
                        running[0] += 1
                        return name, self._spec(named_specs[name], needs.get(name, ()), results)
                    if not running[0]:
                        errors.append(ValueError(f'jobs {pending} wait on jobs that never run'))
                        break
                    cond.wait()
                return None

        def worker() -> None:
            while (job := take()) is not None:
                name, spec = job
                try:
                    self._one(name, spec)
                    res = self.stored(name, spec)
                except BaseException as e:          # SystemExit from a failed job's process, too
                    res, err = None, e
                else:
                    err = None if res is not None else RuntimeError(f'job {name} stored no result')
                with cond:
                    running[0] -= 1
                    if err is None:
                        results[name] = res
                    else:
                        errors.append(err)
                    cond.notify_all()

        if self.jobs == 1:                          # in this process, in order (a job may need the main thread)
            worker()
        else:
            threads = [threading.Thread(target=worker, daemon=True) for _ in range(self.jobs)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        if errors:
            raise errors[0]

    def stored(self, name: str, spec: dict) -> dict | None:
        """The job's stored result, if one was made from this very spec (other settings: run it again)."""
        found = self._find(name, spec)
        return None if found is None else found[1]

    def _find(self, name: str, spec: dict) -> tuple[Path, dict] | None:
        """The result of this very spec and where it is: this run's own, a kept one, or else a committed one."""
        digest = spec_digest(spec)
        places = [self.dir / f'{name}.json', self.dir / 'kept' / f'{name}.{digest}.json']
        if self.archive is not None:
            places.append(self.archive / f'{name}.{digest}.json')
        for path in places:
            if path.is_file():
                res = json.loads(path.read_text())
                if res.get('spec_digest') == digest:
                    return path, res['result']
        return None

    def _one(self, name: str, spec: dict) -> None:
        result, spec_file = self.dir / f'{name}.json', self.dir / f'{name}.spec.json'
        if result.is_file():                        # another spec's result: keep it (see the class)
            old = json.loads(result.read_text()).get('spec_digest')
            if old and old != spec_digest(spec):
                (self.dir / 'kept').mkdir(exist_ok=True)
                os.replace(result, self.dir / 'kept' / f'{name}.{old}.json')
        t = time.time()
        if self.jobs == 1:
            res = JOBS[spec['kind']](spec)
        else:
            atomic_write_text(spec_file, json.dumps(spec) + '\n')
            log = self.dir / f'{name}.log'
            env = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONPATH': str(ROOT)}
            with open(log, 'w') as f:
                r = subprocess.run([sys.executable, __file__, '_job', str(spec_file), str(result)], stdout=f,
                                   stderr=subprocess.STDOUT, env=env, cwd=ROOT)
            if r.returncode != 0:
                tail = log.read_text().splitlines()[-15:]
                raise SystemExit(f'job {name} failed (exit {r.returncode}); its log {log} ends:\n' + '\n'.join(tail))
            res = json.loads(result.read_text())['result']
        # the job's wall time with its process's start and data loading, which the job's own seconds leave out
        res['process_seconds'] = round(time.time() - t, 1)
        atomic_write_text(result, json.dumps({'spec_digest': spec_digest(spec), 'result': res}) + '\n')
        self._report(name, res, t)

    @staticmethod
    def _report(name: str, res: dict, t: float) -> None:
        what = (f"top-1 {res['top1']:.2f} %" if 'top1' in res else f"pick {Arch.from_dict(res['pick'])}"
                if 'pick' in res else f"{len(res['gt_scores'])} archs scored")
        print(f'  {name}: {what} ({time.time() - t:.0f} s)', flush=True)


def run_job(spec_file: str, result_file: str) -> None:
    spec = json.loads(Path(spec_file).read_text())
    res = JOBS[spec['kind']](spec)
    atomic_write_text(Path(result_file), json.dumps({'spec_digest': spec_digest(spec), 'result': res}) + '\n')


def pick(p: dict, keys: tuple[str, ...]) -> dict:
    return {k: p[k] for k in keys if k not in LATER_KEYS or p.get(k, LATER_KEYS[k]) != LATER_KEYS[k]}


def gt_params(p: dict) -> dict:
    """What a ground truth depends on."""
    return pick(p, GT_KEYS)


def standalone_spec(p: dict, data: Path, arch: dict, seed: int, **extra: Any) -> dict:
    """A stand-alone training job (ground truth, DNA teacher, pick): the same recipe keys for all three."""
    return dict(kind='standalone', params=pick(p, STANDALONE_KEYS), data=str(data), arch=arch, seed=seed, **extra)


def spec_digest(spec: dict) -> str:
    """What a stored result was made from: a job is reused only for the same spec (data, recipe, arch, seed)."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


# ---- stages -------------------------------------------------------------------------------------------------
def settings(args: argparse.Namespace) -> dict:
    """QUICK or FULL, then the task's own FULL settings (``TASK_FULL``), then the flags given."""
    given = {k: v for k, v in vars(args).items() if v is not None and k in FULL}
    base = QUICK if args.quick else {**FULL, **TASK_FULL.get(given.get('task', FULL['task']), {})}
    return {**base, **given}


def stability(top1: list) -> str:
    """The ground truth's noise and spread, and the tau they make two seeds agree with on average: one pair's
    tau swings by ~0.2 (four seeds of the default recipe gave 0.54 and -0.10), so it is printed beside it. A
    ground truth is the mean of its seeds, so the tau two of them (each the mean of as many seeds) agree with
    follows, and with an even number of seeds >= 4 the measured one: the halves' means against each other."""
    if len(top1) < 2:
        return 'one seed: no estimate of the noise'
    r = seed_noise(top1)
    text = (f"noise of one run {r['noise']:.2f} points, spread of the archs {r['spread']:.2f}: two seeds agree "
            f"with tau {r['expected_tau']:.2f} on average, two ground truths of {len(top1)} seeds each with "
            f"{r['expected_tau_of_means']:.2f}")
    if len(top1) >= 4 and len(top1) % 2 == 0:
        splits = split_half_taus(top1)
        half = len(top1) // 2
        text += (f"; means of {half} seeds against the other {half}'s (expected "
                 f"{expected_tau(r['noise'], r['spread'], half):.2f}): "
                 + ', '.join(f"{'+'.join(map(str, a))} / {'+'.join(map(str, b))} {t:.2f}" for a, b, t in splits)
                 + f" (mean {np.mean([t for *_, t in splits]):.2f})")
    return text


def archive_of(args: argparse.Namespace) -> Path | None:
    """The committed results a run reads, unless ``--no-archive``."""
    return None if getattr(args, 'no_archive', False) else ARCHIVE


def archive(args: argparse.Namespace) -> None:
    """Copies the results under ``--out/jobs`` (not their checkpoints) to ``ARCHIVE``, to be committed."""
    src = Path(args.out) / 'jobs'
    if not src.is_dir():
        raise SystemExit(f'nas_proxy archive: {src} does not exist (no run under --out {args.out})')
    ARCHIVE.mkdir(parents=True, exist_ok=True)
    n = 0
    for path in sorted(src.glob('*.json')):
        res = json.loads(path.read_text())
        if 'spec_digest' in res and 'result' in res:          # not a job's spec file
            atomic_write_text(ARCHIVE / f"{path.stem}.{res['spec_digest']}.json", json.dumps(res) + '\n')
            n += 1
    print(f'{n} job result(s) of {src} copied to {ARCHIVE}', flush=True)


def groundtruth_file(p: dict, out: Path, data: Path) -> Path:
    return out / 'groundtruth' / f"{spec_digest({'params': gt_params(p), 'data': str(data)})}.json"


def groundtruth_specs(p: dict, data: Path) -> dict[str, dict]:
    archs = arch_sets(p)[1]
    return {f'gt_a{i:02d}_s{s}': standalone_spec(p, data, a.to_dict(), s)
            for s in range(p['gt_seeds']) for i, a in enumerate(archs)}


def groundtruth(args: argparse.Namespace, p: dict | None = None) -> dict:
    p = p or settings(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data, _, _ = make_data(p, out, args.data)
    # kept per recipe (groundtruth/<digest>.json), so that trying another recipe does not lose this one;
    # groundtruth.json / .md are the last one made, for reading
    saved = groundtruth_file(p, out, data)
    if saved.is_file():
        print(f'ground truth: reusing {saved}', flush=True)
        res = json.loads(saved.read_text())
        report_groundtruth(res)
        return res
    (lo, hi), archs, _ = arch_sets(p)
    t0 = time.time()
    specs, pool = groundtruth_specs(p, data), Pool(out, args.jobs, archive_of(args))
    made_before = all(pool.stored(n, spec) is not None for n, spec in specs.items())   # in compare's pool
    done = pool.run(specs)
    # its wall time: this invocation's, or rebuilt from its jobs' seconds when they ran in compare's pool
    seconds = makespan({n: job_wall(done[n]) for n in specs}, args.jobs) if made_before else time.time() - t0
    acc = np.array([[done[f'gt_a{i:02d}_s{s}']['top1'] for i in range(len(archs))] for s in range(p['gt_seeds'])])
    macs = np.array([a.macs for a in archs], dtype=float)
    taus = [kendall_tau(acc[a], acc[b]) for a in range(p['gt_seeds']) for b in range(a + 1, p['gt_seeds'])]
    res = {'params': gt_params(p), 'data': str(data), 'macs_range': [lo, hi],
           'archs': [a.to_dict() for a in archs], 'macs': macs.tolist(), 'top1': acc.tolist(),
           'tau_seed_vs_seed': taus, 'tau_macs_vs_top1': float(kendall_tau(macs, acc.mean(0))),
           'seconds': round(seconds, 1)}
    saved.parent.mkdir(exist_ok=True)
    for path in (saved, out / 'groundtruth.json'):
        atomic_write_text(path, json.dumps(res, indent=2) + '\n')
    spread = acc.mean(0)
    atomic_write_text(out / 'groundtruth.md', (
        '| archs | seeds | epochs | MACs range | top-1 mean (min-max over archs) | tau seed vs seed | tau MACs vs top-1 |\n'
        '|---|---|---|---|---|---|---|\n'
        f"| {len(archs)} | {p['gt_seeds']} | {p['epochs']} x {p['num_train']} images | {lo / 1e6:.2f}-{hi / 1e6:.2f}M | "
        f"{spread.mean():.1f} ({spread.min():.1f}-{spread.max():.1f}) | {', '.join(f'{t:.3f}' for t in taus)} | "
        f"{res['tau_macs_vs_top1']:.3f} |\n\n{stability(acc)}.\n"))
    report_groundtruth(res)
    return res


def report_groundtruth(res: dict) -> None:
    """The ground truth's figures, alike whether it was made now or reused."""
    top1 = np.mean(res['top1'], axis=0)
    print(f"kendall tau seed-vs-seed: {', '.join(f'{t:.3f}' for t in res['tau_seed_vs_seed'])}")
    print(f"stability: {stability(res['top1'])}")
    print(f"kendall tau macs-vs-top1: {res['tau_macs_vs_top1']:.3f}")
    print(f"top-1 over archs: mean {top1.mean():.2f} %, min {top1.min():.2f} %, max {top1.max():.2f} %")
    print(f"ground truth wall time: {res['seconds']:.0f} s", flush=True)


def search_specs(p: dict, out: Path, data: Path, search: Path, held: Path,
                 strategies: list[str]) -> tuple[dict, dict[str, dict]]:
    """The DNA teacher's job (stand-alone, on the task ``data``) and one search job per strategy and seed
    (on the supernets' set ``search``).

    A search's spec holds the search settings only and DNA's also the teacher's digest: a new stand-alone
    recipe (the ground truth's) then retrains the teacher and reruns DNA's searches, but keeps the others'."""
    (lo, hi), _, paths = arch_sets(p)
    teacher = out / ('dna_teacher.pth' if task_of(p) == 'shapes' else f'dna_teacher_{task_of(p)}.pth')
    teacher_spec = standalone_spec(p, data, teacher_arch(p).to_dict(), 0, save=str(teacher))
    base = dict(kind='search', params=pick(p, SEARCH_KEYS), data=str(search), held_out=str(held), macs_range=[lo, hi],
                paths=[a.to_dict() for a in paths])
    # a search setting off its old default (e.g. --search-head zero) gets work dirs of its own, so that the
    # default's searches keep their checkpoints (what scores another set of ground-truth archs)
    tag = ''.join(f'_{k}-{v}' for k, v in pick(p, SEARCH_KEYS).items() if k in LATER_KEYS)
    specs = {f'{s}_s{seed}': dict(base, strategy=s, seed=seed, work_dir=str(out / 'runs' / f'{s}_s{seed}{tag}'),
                                  **(dict(teacher=str(teacher), teacher_digest=spec_digest(teacher_spec))
                                     if s == 'dna' else {}))
             for seed in range(p['seeds']) for s in strategies}
    return teacher_spec, specs


def compare(args: argparse.Namespace) -> dict:
    p = settings(args)
    if p['search_epochs'] % 5:
        raise SystemExit(f"--search-epochs {p['search_epochs']}: must be a multiple of 5 (DNA trains 5 stages in turn)")
    out = Path(args.out)
    t0 = time.time()
    data, search, held = make_data(p, out, args.data)
    strategies = args.strategies or list(STRATEGIES)
    teacher_spec, specs = search_specs(p, out, data, search, held, strategies)
    lo, hi = specs[next(iter(specs))]['macs_range']
    gt_archs = [a.to_dict() for a in arch_sets(p)[1]]
    # one pool: the DNA teacher, the searches, each search's score and pick once it ends, and (when not made
    # before) the ground truth's trainings, which fill the workers the last searches leave idle
    named: dict[str, Any] = {'dna_teacher': teacher_spec} if 'dna' in strategies else {}
    needs = {n: ('dna_teacher',) for n, spec in specs.items() if spec['strategy'] == 'dna'}
    named.update(specs)
    for n, spec in specs.items():
        named[f'score_{n}'] = dict(kind='score', search=spec, search_digest=spec_digest(spec), gt_archs=gt_archs)
        named[f'pick_{n}'] = lambda res, n=n: standalone_spec(p, data, res[n]['pick'], specs[n]['seed'])
        needs[f'score_{n}'] = needs[f'pick_{n}'] = (n,)
    gt_jobs = groundtruth_specs(p, data)
    pool = Pool(out, args.jobs, archive_of(args))
    done = pool.run({**named, **({} if groundtruth_file(p, out, data).is_file() else gt_jobs)}, needs)
    gt = groundtruth(args, p)          # its trainings are done: this gathers them (or reuses a ground truth)
    runs = {n: done[n] for n in specs}
    scores = {f'score_{n}': done[f'score_{n}'] for n in specs}
    picks = {f'pick_{n}': done[f'pick_{n}'] for n in specs}
    gt_top1 = np.mean(gt['top1'], axis=0)
    rows = []
    for s in strategies:
        names = [f'{s}_s{seed}' for seed in range(p['seeds'])]
        taus = [kendall_tau(scores[f'score_{n}']['gt_scores'], gt_top1) for n in names]
        curves = np.array([[c['mean'] for c in runs[n]['convergence']] for n in names])
        top1 = [picks[f'pick_{n}']['top1'] for n in names]
        macs = [Arch.from_dict(runs[n]['pick']).macs for n in names]
        rows.append({'strategy': s, 'tau': taus, 'convergence_epochs': [c['epoch'] for c in runs[names[0]]['convergence']],
                     'convergence': curves.tolist(), 'pick_top1': top1, 'pick_macs': macs,
                     'picks': [runs[n]['pick'] for n in names], 'search_seconds': [runs[n]['seconds'] for n in names]})
    # a run from scratch: every job's measured seconds, scheduled as the pool runs them; a ground truth whose
    # trainings are no longer stored (another recipe's took their names) counts with its own wall time
    gt_done = {n: pool.stored(n, spec) for n, spec in gt_jobs.items()}
    gt_stored = all(r is not None for r in gt_done.values())
    apart = 0.0 if gt_stored else gt['seconds']
    timed = {**{n: done[n] for n in named}, **(gt_done if gt_stored else {})}
    seconds = {n: job_wall(r) for n, r in timed.items()}
    kinds = {'DNA teacher': ['dna_teacher'] if 'dna_teacher' in named else [], 'searches': list(specs),
             'scores': [f'score_{n}' for n in specs], 'picks': [f'pick_{n}' for n in specs],
             'ground truth': list(gt_jobs) if gt_stored else []}
    made = data_seconds(out)
    res = {'params': p, 'macs_range': [lo, hi], 'groundtruth': {k: gt[k] for k in
           ('top1', 'macs', 'tau_seed_vs_seed', 'tau_macs_vs_top1')}, 'rows': rows,
           'seconds': round(time.time() - t0, 1), 'groundtruth_seconds': gt['seconds'], 'jobs': args.jobs,
           'pool_seconds': round(makespan(seconds, args.jobs, needs), 1), 'groundtruth_apart_seconds': apart,
           'job_seconds': {k: round(sum(seconds[n] for n in v), 1) for k, v in kinds.items()},
           'jobs_without_process_time': sum('process_seconds' not in r for r in timed.values()),
           'data_seconds': ({k: made[k] for k in (data.name, search.name, held.name)}
                            if all(k in made for k in (data.name, search.name, held.name)) else None)}
    atomic_write_text(out / 'results.json', json.dumps(res, indent=2) + '\n')
    table = results_table(res)
    atomic_write_text(out / 'results.md', table)
    atomic_write_bytes(out / 'results.png', results_plot(res))
    print(table)
    print(f'wall time (this invocation): {res["seconds"]:.0f} s -> {out / "results.md"}, {out / "results.png"}')
    return res


def learnability(args: argparse.Namespace) -> dict:
    """How fast a single-path supernet learns the task, by how paths are drawn (the bare step, no engine).

    ``fixed``: one path throughout (what a stand-alone net sees); ``same_op``: every layer runs the same
    op, drawn per step from all ops (only as many paths as ops); ``per_layer``: each layer draws its own op
    (SPOS's uniform sampling). Prints the running training top-1 every ``--every`` steps."""
    import torch.nn.functional as F
    from cream_det.models.supernet import Supernet
    p = settings(args)
    out = Path(args.out)
    _, data, _ = make_data(p, out, args.data)
    torch.set_num_threads(1)
    train = load(data, 'train', p['size'], p['batch'], order_seed=0)
    depths = (p['depths'],) * len(CREAM_SPACE.stages)
    template = ArchSampler(CREAM_SPACE, p['size'], classes(p), depths=depths, seed=0).sample().encode()
    n_ops = len(CREAM_SPACE.ops)
    res = {}
    for mode in args.modes:
        torch.manual_seed(0)
        rng = np.random.default_rng(0)
        sn = Supernet(CREAM_SPACE, depths, classes(p), resolution=p['size'], init=args.init,
                      head_init=p['search_head']).train()
        opt = torch.optim.SGD(sn.parameters(), lr=p['search_lr'], momentum=0.9, nesterov=True, weight_decay=1e-4)
        fixed = tuple(int(v) for v in template)
        hits = seen = 0
        curve = []
        for step in range(args.steps):
            x, y = train[step % len(train)]
            if mode == 'fixed':
                code = fixed
            elif mode == 'same_op':
                op = int(rng.integers(n_ops))
                code = tuple(op if v >= 0 else -1 for v in template)
            else:
                code = tuple(int(rng.integers(n_ops)) if v >= 0 else -1 for v in template)
            logits = sn(x, code)
            loss = F.cross_entropy(logits, y, label_smoothing=0.1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            hits, seen = hits + int((logits.argmax(1) == y).sum()), seen + len(y)
            if (step + 1) % args.every == 0:
                curve.append(round(100.0 * hits / seen, 1))
                print(f'{mode} step {step + 1}: training top-1 of the last {args.every} steps {curve[-1]:.1f} %',
                      flush=True)
                hits = seen = 0
        res[mode] = curve
    atomic_write_text(out / 'learnability.json', json.dumps({'params': p, 'init': args.init, 'every': args.every,
                                                              'curves': res}, indent=2) + '\n')
    return res


LABELS = {'cream_meta': 'Cream (meta matcher)', 'cream_top1': 'Cream (top-1 teacher)',
          'cream_random': 'Cream (random board teacher)', 'spos': 'SPOS', 'dna': 'DNA', 'mixpath': 'MixPath'}


def _ms(v: Any, digits: int = 2) -> str:
    v = np.asarray(v, dtype=float)
    return f'{v.mean():.{digits}f} ± {v.std(ddof=1) if len(v) > 1 else 0.0:.{digits}f}'


def results_table(res: dict) -> str:
    p, gt = res['params'], res['groundtruth']
    epochs = res['rows'][0]['convergence_epochs']
    head = ('| strategy | mean inherited top-1 of the paths at epoch ' + ' / '.join(str(e) for e in epochs)
            + ' | Kendall tau vs stand-alone | pick: MACs | pick: stand-alone top-1 |')
    lines = [head, '|---|---|---|---|---|']
    for r in res['rows']:
        curve = np.asarray(r['convergence']).mean(0)
        conv = ' / '.join(f'{v:.1f}' if r['strategy'] != 'dna' else f'{v:.2f}' for v in curve)
        if r['strategy'] == 'dna':
            conv = f'(minus summed block rating) {conv}'
        lines.append(f"| {LABELS[r['strategy']]} | {conv} | {_ms(r['tau'])} | {np.mean(r['pick_macs']) / 1e6:.2f}M | "
                     f"{_ms(r['pick_top1'])} % |")
    gtop = np.mean(gt['top1'], axis=0)
    # the bar a supernet has to clear to say more than "bigger is better": ranking the archs by MACs alone
    lines.append(f"| MACs alone (no supernet) | | {gt['tau_macs_vs_top1']:.2f} | | |")
    lines += ['', f"{len(gtop)} ground-truth archs in {res['macs_range'][0] / 1e6:.2f}-{res['macs_range'][1] / 1e6:.2f}M "
              f"MACs, stand-alone {p['epochs']} epochs x {p['num_train']} images, top-1 {gtop.min():.1f}-{gtop.max():.1f} %; "
              f"tau seed vs seed {', '.join(f'{t:.2f}' for t in gt['tau_seed_vs_seed'])} ({stability(gt['top1'])}), "
              f"tau MACs vs top-1 "
              f"{gt['tau_macs_vs_top1']:.2f}. {p['paths']} convergence paths; {p['seeds']} seed(s) per strategy, "
              f"mean ± std; supernets {p['search_epochs']} epochs x {p['search_train']} images. "
              f"{wall_time(res)}", '']
    return '\n'.join(lines)


def wall_time(res: dict) -> str:
    """A run from scratch at ``--jobs``: its jobs' measured seconds scheduled as the pool runs them (a run
    interrupted and resumed over several invocations has no single wall time of its own)."""
    data, apart = res['data_seconds'], res['groundtruth_apart_seconds']
    total = res['pool_seconds'] + apart + (sum(data.values()) if data else 0.0)
    kinds = ', '.join(f'{k} {v / 60:.0f}' for k, v in res['job_seconds'].items() if v)
    made = (f"data generation {sum(data.values()) / 60:.0f} min" if data else
            'data generation not counted (the sets were made before it was recorded)')
    gt = f" + the ground truth, made apart, {apart / 60:.0f} min" if apart else ''
    if res.get('jobs_without_process_time'):
        gt += (f" ({res['jobs_without_process_time']} jobs were made before process times were recorded: their "
               f"own seconds, without their process's start, count)")
    return (f"Wall time of a run from scratch at --jobs {res['jobs']}: {total / 3600:.2f} h = the pool's jobs "
            f"{res['pool_seconds'] / 60:.0f} min (their measured seconds, scheduled as the pool runs them; "
            f"minutes of job time: {kinds}){gt} + {made}; this invocation {res['seconds'] / 60:.0f} min.")


def results_plot(res: dict) -> bytes:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(13, 3.8), dpi=110)
    rows = [r for r in res['rows'] if r['strategy'] != 'dna']
    for r in rows:
        curve = np.asarray(r['convergence'])
        a.errorbar(r['convergence_epochs'], curve.mean(0), yerr=curve.std(0), capsize=2, label=LABELS[r['strategy']])
    a.set(xlabel='supernet epoch', ylabel='mean inherited top-1 of the paths (%)', title='convergence')
    a.legend(fontsize=7)
    short = {'cream_meta': 'Cream\nmeta', 'cream_top1': 'Cream\ntop-1', 'cream_random': 'Cream\nrandom',
             'spos': 'SPOS', 'dna': 'DNA', 'mixpath': 'MixPath'}
    names = [short[r['strategy']] for r in res['rows']]
    for ax, key, title in ((b, 'tau', 'Kendall tau vs stand-alone'), (c, 'pick_top1', 'pick, stand-alone top-1 (%)')):
        for i, r in enumerate(res['rows']):
            v = np.asarray(r[key], dtype=float)
            ax.bar(i, v.mean(), color='tab:blue', alpha=0.35)
            ax.scatter([i] * len(v), v, color='tab:blue', s=14, zorder=3)
        ax.set_xticks(range(len(names)), names, fontsize=7.5)
        ax.set_title(title, fontsize=10)
    for value, text, style in ((np.mean(res['groundtruth']['tau_seed_vs_seed']), 'ground truth seed vs seed', '--'),
                               (res['groundtruth']['tau_macs_vs_top1'], 'MACs alone', ':')):
        b.axhline(float(value), color='grey', ls=style, lw=1)
        b.text(0, float(value), text, fontsize=6, va='bottom', color='grey')
    lo = min(min(r['pick_top1']) for r in res['rows'])
    c.set_ylim(max(0.0, lo - 5), None)
    fig.tight_layout()
    return png_bytes(fig)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ['_job']:                   # one job, in its own process (Pool)
        return run_job(*argv[1:3])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest='stage', required=True)
    for name, text in (('groundtruth', 'stand-alone accuracy of archs with several seeds'),
                       ('compare', 'the ground truth, then every strategy x seed, scored against it'),
                       ('learnability', 'how fast a supernet learns the task, by how its paths are drawn')):
        g = sub.add_parser(name, help=text)
        g.add_argument('--quick', action='store_true', help='a tiny setting that checks the harness in about a minute')
        g.add_argument('--out', default='work_dirs/nas_proxy')
        g.add_argument('--data', help='an existing set of the task (default: generated under --out)')
        g.add_argument('--jobs', type=int, default=1, help='trainings at once, each in its own process')
        if name == 'compare':
            g.add_argument('--strategies', nargs='+', choices=STRATEGIES)
        if name in ('groundtruth', 'compare'):
            g.add_argument('--no-archive', action='store_true',
                           help=f'train every job here, even one whose result is committed in {ARCHIVE_REL}')
        if name == 'learnability':
            g.add_argument('--modes', nargs='+', choices=('fixed', 'same_op', 'per_layer'),
                           default=['fixed', 'same_op', 'per_layer'])
            g.add_argument('--steps', type=int, default=1200)
            g.add_argument('--every', type=int, default=150)
            g.add_argument('--init', choices=('aligned', 'independent'), default='aligned')
        for key in FULL:
            if isinstance(FULL[key], list):
                g.add_argument(f"--{key.replace('_', '-')}", dest=key, type=float, nargs=len(FULL[key]))
            else:
                g.add_argument(f"--{key.replace('_', '-')}", dest=key, type=type(FULL[key]))
    a = sub.add_parser('archive', help=f'copy the job results under --out to {ARCHIVE_REL}, to commit')
    a.add_argument('--out', default='work_dirs/nas_proxy')
    args = ap.parse_args(argv)
    if args.stage == 'archive':
        return archive(args)
    if args.jobs < 1:
        ap.error('--jobs must be >= 1')
    if args.task not in (None, *TASKS):
        ap.error(f"--task {args.task}: one of {', '.join(TASKS)}")
    if args.gt_select not in (None, 'macs', *GT_KNOBS):
        ap.error(f"--gt-select {args.gt_select}: 'macs' (spread over MACs), 'width' (over wide layers, then MACs) or "
                 f"'kernel' (over large-kernel layers, then MACs)")
    for key in ('head', 'search_head'):
        if getattr(args, key) not in (None, *HEAD_INITS):
            ap.error(f"--{key.replace('_', '-')} {getattr(args, key)}: one of {', '.join(HEAD_INITS)} ('timm': the "
                     f"classifier as timm and the authors init it)")
    if args.band is not None and not 0 <= args.band[0] < args.band[1] <= 100:
        ap.error(f'--band {args.band[0]:g} {args.band[1]:g}: two percentiles, 0 <= low < high <= 100')
    {'groundtruth': groundtruth, 'compare': compare, 'learnability': learnability}[args.stage](args)


if __name__ == '__main__':
    main()
