"""The task's data (generated under ``--out``, read through the real ImageNet-folder loader) and the arch sets:
the MACs range, the ground-truth archs, the convergence paths and the DNA teacher.
"""
from __future__ import annotations

import functools
import json
import time
from pathlib import Path

import numpy as np
import torch

from cream_det.data.imagenet import CreamImageFolder
from cream_det.search.teacher import stage_sizes
from cream_det.space import CREAM_SPACE, Arch, ArchSampler
from cream_det.utils.io import atomic_write_text

from .params import GT_KNOBS, LARGEST_OP, TASKS, classes, task_of


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


def data_dirs(p: dict, out: Path, data: str | None) -> tuple[Path, Path, Path]:
    """Where :func:`make_data` puts the three sets (a job's spec names them, so they are part of its digest)."""
    task = task_of(p)
    root = Path(data) if data else out / f"{task}_{p['size']}px_{p['num_train']}"
    search = Path(data) if data else out / f"{task}_{p['size']}px_{p['search_train']}"
    held = out / f"{task}_{p['size']}px_search_val_{p['search_val']}"
    return root, search, held


def make_data(p: dict, out: Path, data: str | None) -> tuple[Path, Path, Path]:
    """The task, the supernets' training set (both ``--data`` when given, else generated under ``out``; the
    same set when ``num_train == search_train``) and the searches' held-out set (always generated)."""
    task = task_of(p)
    root, search, held = data_dirs(p, out, data)
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


def arch_sets(p: dict) -> tuple[tuple[float, float], list[Arch], list[Arch]]:
    """The MACs range (the ``band`` percentiles of the space's MACs), the ground-truth archs and the
    convergence paths."""
    depths = (p['depths'],) * len(CREAM_SPACE.stages)
    lo, hi = macs_band(p)
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
    if p.get('gt_select') == 'knobs':
        return (lo, hi), knob_factorial(p)[0], [conv.sample() for _ in range(p['paths'])]
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


def knob_factorial(p: dict) -> tuple[list[Arch], Arch, dict]:
    """The two-knob ground truth (``gt_select='knobs'``): every count of k7 layers where a kernel can matter (0 to 3 at
    32 px) crossed with two adjacent counts of e6 layers, ``archs / cells`` archs per cell, all at matched MACs; and
    DNA's teacher for it, at neither extreme of either knob.

    Spread over one knob, a ground truth is ranked by that count alone (the glyphs' k7 layers gave tau 0.73), and a
    supernet that only learned "more k7 is better" ranks it as well as one that learned the task. Here both knobs
    vary and MACs do not: e6 layers cost MACs and k7 ones a little, so the two e6 counts and the target MACs are
    those whose cells all hold archs nearest one MACs value (over a large in-range sample of distinct archs), and
    each cell takes its archs nearest that value. The teacher (all k7e6 before: the top of both knobs, where DNA's
    imitation would reward the very knob the ground truth is spread over) is the arch nearest the target with the
    middle k7 count and the lower e6 count that is not a ground-truth arch.
    Returns the archs (sorted by MACs), the teacher and the design (levels, target, MACs spread); cached, since
    every phase of a run asks for it."""
    key = {'task': task_of(p), **{k: p[k] for k in ('size', 'depths', 'band', 'archs')}}
    return _knob_factorial(json.dumps(key, sort_keys=True))


@functools.lru_cache(maxsize=8)
def _knob_factorial(key: str) -> tuple[list[Arch], Arch, dict]:
    p = json.loads(key)
    depths = (p['depths'],) * len(CREAM_SPACE.stages)
    lo, hi = macs_band(p)
    sampler = ArchSampler(CREAM_SPACE, p['size'], classes(p), depths=depths, macs_range=(lo, hi), seed=7)
    codes = np.unique(sampler.sample_codes(16384), axis=0)
    pool = [sampler.decode(c) for c in codes]
    macs = sampler.table.macs_of(codes).astype(float)
    k7 = np.array([top_layers(a, 'kernel', p['size']) for a in pool])
    e6 = np.array([top_layers(a, 'expansion', p['size']) for a in pool])
    kernels = list(range(int(k7.max()) + 1))
    cells = 2 * len(kernels)
    if p['archs'] % cells:
        raise SystemExit(f"--gt-select knobs: {p['archs']} archs do not fill {len(kernels)} k7 counts x 2 e6 counts "
                         f"evenly; ask for a multiple of {cells} (--archs)")
    per = p['archs'] // cells
    best = None
    for e in range(int(e6.max())):
        for target in np.quantile(macs, np.linspace(0.05, 0.95, 91)):
            gaps = []
            for k in kernels:
                for level in (e, e + 1):
                    near = np.sort(np.abs(macs[(k7 == k) & (e6 == level)] - target))
                    gaps.append(near[per - 1] if len(near) >= per else np.inf)
            if best is None or max(gaps) < best[0]:
                best = (max(gaps), e, float(target))
    worst, e, target = best
    if not np.isfinite(worst):
        raise SystemExit(f"--gt-select knobs: no two e6 counts hold {per} archs in every k7 count's cell; ask for "
                         f"fewer archs (--archs)")
    chosen: list[int] = []
    for k in kernels:
        for level in (e, e + 1):
            idx = np.flatnonzero((k7 == k) & (e6 == level))
            chosen += idx[np.argsort(np.abs(macs[idx] - target), kind='stable')[:per]].tolist()
    mid = np.flatnonzero((k7 == kernels[len(kernels) // 2]) & (e6 == e))
    mid = [i for i in mid[np.argsort(np.abs(macs[mid] - target), kind='stable')] if i not in chosen]
    archs = sorted((pool[i] for i in chosen), key=lambda a: a.macs)
    design = {'k7_levels': kernels, 'e6_levels': [e, e + 1], 'per_cell': per, 'target_macs': target,
              'macs_spread': [float(min(a.macs for a in archs)), float(max(a.macs for a in archs))]}
    return archs, pool[mid[0]], design


def multipath_range(p: dict, max_paths: int) -> tuple[float, float]:
    """MixPath's MACs range: from the single-path range's low end to the ``band``'s upper percentile of the MACs of
    multi-path archs drawn as MixPath draws them (k ~ U{1..max_paths} ops per layer, each costing the sum of its
    branches: ``Arch.macs``).

    A multi-path path costs up to ``max_paths`` times a single one, so the single-path range would leave MixPath
    (``constrain_macs=True``) training only the narrow draws that fit it: ``configs/search/mixpath_demo.py`` sizes
    its range the same way (single-path 8-10M, multi-path 8-20M). The low end keeps every single-path arch of the
    band, which every supernet scores."""
    depths = (p['depths'],) * len(CREAM_SPACE.stages)
    lo, _ = macs_band(p)
    many = ArchSampler(CREAM_SPACE, p['size'], classes(p), depths=depths, max_paths=max_paths, seed=123)
    hi = float(np.percentile([many.decode(c).macs for c in many.sample_codes(400)], p['band'][1]))
    return lo, hi


def macs_band(p: dict) -> tuple[float, float]:
    """The single-path MACs range: the ``band`` percentiles of the MACs of the space's one-layer-per-stage archs."""
    depths = (p['depths'],) * len(CREAM_SPACE.stages)
    every = ArchSampler(CREAM_SPACE, p['size'], classes(p), depths=depths, seed=123)
    lo, hi = (float(v) for v in np.percentile([every.sample().macs for _ in range(400)], p['band']))
    return lo, hi


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
    """DNA's teacher: the space's largest path (all k7e6), or with the two-knob ground truth one in the middle of
    both knobs (``knob_factorial``)."""
    if p.get('gt_select') == 'knobs':
        return knob_factorial(p)[1]
    depths = (p['depths'],) * len(CREAM_SPACE.stages)
    code = ArchSampler(CREAM_SPACE, p['size'], classes(p), depths=depths, seed=0).sample().encode()
    return Arch.decode(np.where(code >= 0, LARGEST_OP, code), CREAM_SPACE, p['size'], classes(p))
