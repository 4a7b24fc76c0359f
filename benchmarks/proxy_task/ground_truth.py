"""``groundtruth``: the archs trained from scratch with several seeds, kept per stand-alone recipe."""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from cream_det.search.ranking import kendall_tau
from cream_det.utils.io import atomic_write_text

from .data import arch_sets, make_data
from .params import gt_params, settings, spec_digest, standalone_spec
from .pool import Pool, archive_of, job_wall, makespan
from .report import stability


def groundtruth_file(p: dict, out: Path, data: Path) -> Path:
    return out / 'groundtruth' / f"{spec_digest({'params': gt_params(p), 'data': str(data)})}.json"


def reusable_groundtruth(p: dict, out: Path, data: Path) -> dict | None:
    """The ground truth kept for this recipe, if it holds the archs drawn now; None when there is none.

    It is kept by its parameters (``groundtruth_file``), not by its archs: when the way archs are drawn changes
    (the sampler, the space's costs, a selection), the same parameters draw other archs, and reusing it would
    score every supernet against the top-1 of archs it never scored. Such a file is set aside (``.stale``), said
    so, and the ground truth is rebuilt from the trainings of the archs drawn now (each a job of its own arch).
    """
    saved = groundtruth_file(p, out, data)
    if not saved.is_file():
        return None
    res = json.loads(saved.read_text())
    drawn = [a.to_dict() for a in arch_sets(p)[1]]
    if json.dumps(res.get('archs'), sort_keys=True) == json.dumps(drawn, sort_keys=True):
        return res
    stale = saved.with_suffix('.stale')
    os.replace(saved, stale)
    held = len(res.get('archs') or [])
    differ = sum(a != b for a, b in zip(res.get('archs') or [], drawn)) + abs(held - len(drawn))
    print(f'ground truth: {saved} holds other archs than the {len(drawn)} drawn now ({differ} differ): moved to '
          f'{stale.name} and rebuilt from the trainings of the archs drawn now', flush=True)
    return None


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
    res = reusable_groundtruth(p, out, data)
    if res is not None:
        print(f'ground truth: reusing {saved}', flush=True)
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
