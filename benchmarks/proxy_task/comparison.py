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

from .data import arch_sets, data_seconds, make_data, multipath_range, teacher_arch, top_layers
from .ground_truth import groundtruth, groundtruth_specs, reusable_groundtruth
from .jobs import config_digest, demo_config
from .params import LATER_KEYS, SEARCH_KEYS, STRATEGIES, pick, settings, spec_digest, standalone_spec, task_of
from .pool import Pool, archive_of, job_wall, makespan
from .report import results_plot, results_table
from .statistics import paired_difference, self_consistency


def search_specs(p: dict, out: Path, data: Path, search: Path, held: Path,
                 strategies: list[str]) -> tuple[dict, dict[str, dict]]:
    """The DNA teacher's job (stand-alone, on the task ``data``) and one search job per strategy and seed
    (on the supernets' set ``search``).

    A search's spec holds the search settings only and DNA's also the teacher's digest: a new stand-alone
    recipe (the ground truth's) then retrains the teacher and reruns DNA's searches, but keeps the others'."""
    (lo, hi), _, paths = arch_sets(p)
    teacher = out / ('dna_teacher' + ('' if task_of(p) == 'shapes' else f'_{task_of(p)}')
                     + ('_knobs' if p.get('gt_select') == 'knobs' else '') + '.pth')     # its own arch: its own file
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


def comparison_jobs(p: dict, out: Path, data: Path, search: Path, held: Path, strategies: list[str],
                    picks: bool = True
                    ) -> tuple[dict[str, dict], dict[str, Any], dict[str, tuple[str, ...]], dict[str, dict]]:
    """The jobs of a comparison: the searches' specs; every job of its pool but the ground truth's (a pick's spec
    is a function of its search's result; ``picks=False`` leaves the picks' retraining out) and what each needs
    first; the ground truth's trainings."""
    teacher_spec, specs = search_specs(p, out, data, search, held, strategies)
    gt_archs = [a.to_dict() for a in arch_sets(p)[1]]
    # one pool: the DNA teacher, the searches, each search's score and pick once it ends, and (when not made
    # before) the ground truth's trainings, which fill the workers the last searches leave idle
    named: dict[str, Any] = {'dna_teacher': teacher_spec} if 'dna' in strategies else {}
    needs = {n: ('dna_teacher',) for n, spec in specs.items() if spec['strategy'] == 'dna'}
    named.update(specs)
    for n, spec in specs.items():
        named[f'score_{n}'] = dict(kind='score', search=spec, search_digest=spec_digest(spec), gt_archs=gt_archs)
        needs[f'score_{n}'] = (n,)
        if picks:
            named[f'pick_{n}'] = lambda res, n=n: standalone_spec(p, data, res[n]['pick'], specs[n]['seed'])
            needs[f'pick_{n}'] = (n,)
    return specs, named, needs, groundtruth_specs(p, data)


def compare(args: argparse.Namespace) -> dict:
    p = settings(args)
    if p['search_epochs'] % 5:
        raise SystemExit(f"--search-epochs {p['search_epochs']}: must be a multiple of 5 (DNA trains 5 stages in turn)")
    out = Path(args.out)
    t0 = time.time()
    data, search, held = make_data(p, out, args.data)
    strategies = args.strategies or list(STRATEGIES)
    with_picks = not getattr(args, 'no_picks', False)
    specs, named, needs, gt_jobs = comparison_jobs(p, out, data, search, held, strategies, with_picks)
    (lo, hi), gt_archs, _ = arch_sets(p)
    pool = Pool(out, args.jobs, archive_of(args))
    done = pool.run({**named, **({} if reusable_groundtruth(p, out, data) else gt_jobs)}, needs)
    gt = groundtruth(args, p)          # its trainings are done: this gathers them (or reuses a ground truth)
    gt_top1 = np.mean(gt['top1'], axis=0)
    rows = [strategy_row(s, [f'{s}_s{seed}' for seed in range(p['seeds'])], specs, done, gt_top1)
            for s in strategies]
    # a run from scratch: every job's measured seconds, scheduled as the pool runs them; a ground truth whose
    # trainings are no longer stored (another recipe's took their names) counts with its own wall time
    gt_done = {n: pool.stored(n, spec) for n, spec in gt_jobs.items()}
    gt_stored = all(r is not None for r in gt_done.values())
    apart = 0.0 if gt_stored else gt['seconds']
    timed = {**{n: done[n] for n in named}, **(gt_done if gt_stored else {})}
    seconds = {n: job_wall(r) for n, r in timed.items()}
    kinds = {'DNA teacher': ['dna_teacher'] if 'dna_teacher' in named else [], 'searches': list(specs),
             'scores': [f'score_{n}' for n in specs], 'picks': [f'pick_{n}' for n in specs if f'pick_{n}' in named],
             'ground truth': list(gt_jobs) if gt_stored else []}
    made = data_seconds(out)
    res = {'params': p, 'macs_range': [lo, hi], 'groundtruth': {k: gt[k] for k in
           ('top1', 'macs', 'tau_seed_vs_seed', 'tau_macs_vs_top1')}, 'rows': rows,
           'baselines': baselines(gt_archs, gt_top1, p['size']),
           'paired': paired_rows(rows),
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


def strategy_row(s: str, names: list[str], specs: dict[str, dict], done: dict[str, dict], gt_top1: np.ndarray) -> dict:
    """One strategy's seeds: convergence (mean and every path's final score), its scores of the ground-truth archs
    with their tau and self-consistency, its picks (``None`` where they were not retrained), Cream's per-epoch
    report."""
    scores = [done[f'score_{n}']['gt_scores'] for n in names]
    runs = [done[n] for n in names]
    picked = [done.get(f'pick_{n}') for n in names]
    row = {'strategy': s, 'macs_range': specs[names[0]]['macs_range'],
           'tau': [kendall_tau(sc, gt_top1) for sc in scores], 'scores': scores,
           **self_consistency(scores, gt_top1),
           'convergence_epochs': [c['epoch'] for c in runs[0]['convergence']],
           'convergence': [[c['mean'] for c in r['convergence']] for r in runs],
           'final_path_scores': [r['convergence'][-1]['scores'] for r in runs],
           'pick_top1': None if None in picked else [q['top1'] for q in picked],
           'pick_macs': [Arch.from_dict(r['pick']).macs for r in runs],
           'picks': [r['pick'] for r in runs], 'search_seconds': [r['seconds'] for r in runs]}
    if all('cream_epochs' in r for r in runs):
        row['cream_epochs'] = [r['cream_epochs'] for r in runs]
    return row


def baselines(archs: list[Arch], gt_top1: np.ndarray, size: int) -> dict[str, float]:
    """The taus a supernet has to clear to say more than a count does: the ground-truth archs ranked by MACs, by
    params, by their k7 layers (where a kernel can matter) and by their e6 layers, each against the ground truth
    (the mean of all its seeds)."""
    keys = {'MACs': lambda a: a.macs, 'params': lambda a: a.params,
            'k7 layers': lambda a: top_layers(a, 'kernel', size),
            'e6 layers': lambda a: top_layers(a, 'expansion', size)}
    return {name: kendall_tau([key(a) for a in archs], gt_top1) for name, key in keys.items()}


def paired_rows(rows: list[dict]) -> dict[str, dict]:
    """Each Cream arm minus SPOS on the convergence paths at the last point, paired by seed and path
    (``statistics.paired_difference``); empty without SPOS or without a Cream arm."""
    by = {r['strategy']: r for r in rows}
    if 'spos' not in by:
        return {}
    return {s: paired_difference(r['final_path_scores'], by['spos']['final_path_scores'])
            for s, r in by.items() if s.startswith('cream')}
