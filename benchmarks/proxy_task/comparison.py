"""``compare``: every strategy x seed searched on the same supernet, data, range and budget, scored against the
ground truth, its pick retrained; one pool for all of it.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from cream_det.search.ranking import kendall_tau
from cream_det.space import Arch
from cream_det.utils.io import atomic_write_bytes, atomic_write_text

from .data import arch_sets, data_seconds, make_data, multipath_range, teacher_arch
from .ground_truth import groundtruth, groundtruth_specs, reusable_groundtruth
from .jobs import config_digest, demo_config
from .params import LATER_KEYS, SEARCH_KEYS, STRATEGIES, pick, settings, spec_digest, standalone_spec, task_of
from .pool import Pool, archive_of, job_wall, makespan
from .report import results_plot, results_table


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
    # MixPath trains multi-path paths, which cost the sum of their branches: a range of its own (``multipath_range``)
    multi = ({'macs_range': list(multipath_range(p, demo_config('mixpath').model.strategy.max_paths))}
             if 'mixpath' in strategies else {})
    specs = {f'{s}_s{seed}': dict(base, strategy=s, seed=seed, work_dir=str(out / 'runs' / f'{s}_s{seed}{tag}'),
                                  **(dict(teacher=str(teacher), teacher_digest=spec_digest(teacher_spec))
                                     if s == 'dna' else {}), **(multi if s == 'mixpath' else {}))
             for seed in range(p['seeds']) for s in strategies}
    for spec in specs.values():        # the whole config each search runs, demo files and derived values
        spec['config'] = config_digest(spec)
    return teacher_spec, specs


def comparison_jobs(p: dict, out: Path, data: Path, search: Path, held: Path, strategies: list[str]
                    ) -> tuple[dict[str, dict], dict[str, Any], dict[str, tuple[str, ...]], dict[str, dict]]:
    """The jobs of a comparison: the searches' specs; every job of its pool but the ground truth's (a pick's spec
    is a function of its search's result) and what each needs first; the ground truth's trainings."""
    teacher_spec, specs = search_specs(p, out, data, search, held, strategies)
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
    return specs, named, needs, groundtruth_specs(p, data)


def compare(args: argparse.Namespace) -> dict:
    p = settings(args)
    if p['search_epochs'] % 5:
        raise SystemExit(f"--search-epochs {p['search_epochs']}: must be a multiple of 5 (DNA trains 5 stages in turn)")
    out = Path(args.out)
    t0 = time.time()
    data, search, held = make_data(p, out, args.data)
    strategies = args.strategies or list(STRATEGIES)
    specs, named, needs, gt_jobs = comparison_jobs(p, out, data, search, held, strategies)
    lo, hi = arch_sets(p)[0]
    pool = Pool(out, args.jobs, archive_of(args))
    done = pool.run({**named, **({} if reusable_groundtruth(p, out, data) else gt_jobs)}, needs)
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
        rows.append({'strategy': s, 'macs_range': specs[names[0]]['macs_range'], 'tau': taus, 'convergence_epochs': [c['epoch'] for c in runs[names[0]]['convergence']],
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
