"""``compare --plan``: the first epoch of every kind of job of a comparison timed, and the wall time of the whole run
projected from it, so that the steps can be chosen before the hours are spent.

Each strategy's search runs its first epoch (seed 0, in a work dir of its own under ``--out/plan``) and scores its
convergence paths once; the stand-alone recipe trains one epoch; they run ``--jobs`` at a time, as the full run's
jobs will. The projection, per job of the full run:

- a search: its first epoch x the epochs, plus its convergence points (each: the paths scored once), plus its final
  pick where that scores archs (SPOS's evolution and MixPath's NSGA-II: population x generations archs on the
  whole held-out set; the board and DNA's pick: not counted);
- a score: the ground-truth archs on the whole held-out set (a path's scoring time scaled by the images);
- a stand-alone training (a pick, DNA's teacher, the ground truth's not stored yet): its epoch x the epochs;

scheduled as the pool runs them (``makespan``) from what is already stored (the committed ground truth, a teacher
trained before). It is a projection: DNA's later stages, a search's first-epoch overheads and scoring's BN
recalibration do not scale exactly; the table says what each figure is made of.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from cream_det.utils.io import atomic_write_text

from .comparison import comparison_jobs
from .data import make_data
from .ground_truth import reusable_groundtruth
from .jobs import search_config
from .params import STRATEGIES, settings
from .pool import Pool, archive_of, job_wall, makespan


def final_pick_archs(spec: dict) -> int:
    """How many archs a search's final pick scores on the held-out set (0: the board's or DNA's pick)."""
    key = {'spos': 'evolution', 'mixpath': 'pareto'}.get(spec['strategy'])
    if key is None:
        return 0
    cfg = search_config(spec)[key]
    return int(cfg['population'] * cfg['generations'])


def project(p: dict, probes: dict[str, dict], named: dict, needs: dict, gt_jobs: dict, stored: dict[str, dict],
            jobs: int) -> dict:
    """Every job's projected seconds from the probes (``plan_<strategy>``: a search's first epoch and one scoring of
    its paths; ``plan_standalone``: one stand-alone epoch) or, when stored, its measured ones; and their makespan."""
    epoch = probes['plan_standalone']['epoch_seconds']
    points = p['search_epochs'] // max(1, p['search_epochs'] // p['points'])    # as the convergence hook scores
    seconds: dict[str, float] = {}
    parts: dict[str, str] = {}
    for name, spec in {**named, **gt_jobs}.items():
        if name in stored:
            seconds[name], parts[name] = job_wall(stored[name]), 'stored'
            continue
        kind = 'search' if not callable(spec) and spec['kind'] == 'search' else (
            'score' if not callable(spec) and spec['kind'] == 'score' else 'standalone')
        if kind == 'standalone':
            seconds[name], parts[name] = epoch * p['epochs'], f"{p['epochs']} x {epoch:.0f} s"
            continue
        search = spec if kind == 'search' else spec['search']
        probe = probes[f"plan_{search['strategy']}"]
        per_arch = probe['score_seconds'] / probe['paths'] * p['search_val'] / p['conv_val']   # whole held-out set
        if kind == 'score':
            seconds[name] = per_arch * p['archs']
            parts[name] = f"{p['archs']} archs x {per_arch:.1f} s"
        else:
            final = final_pick_archs(search)
            seconds[name] = (probe['epoch_seconds'] * p['search_epochs'] + points * probe['score_seconds']
                             + final * per_arch)
            parts[name] = (f"{p['search_epochs']} x {probe['epoch_seconds']:.0f} s + {points} x "
                           f"{probe['score_seconds']:.0f} s" + (f' + {final} archs x {per_arch:.1f} s'
                                                                 if final else ''))
    order = {n: seconds[n] for n in [*named, *gt_jobs]}
    # what the command still has to run: a stored job is read back, not rerun (the committed ground truth)
    remaining = {n: (0.0 if parts[n] == 'stored' else t) for n, t in order.items()}
    return {'seconds': order, 'parts': parts, 'wall': makespan(order, jobs, needs),
            'wall_remaining': makespan(remaining, jobs, needs)}


def plan(args: argparse.Namespace) -> dict:
    p = settings(args)
    out = Path(args.out)
    data, search, held = make_data(p, out, args.data)
    strategies = args.strategies or list(STRATEGIES)
    specs, named, needs, gt_jobs = comparison_jobs(p, out, data, search, held, strategies,
                                                   not getattr(args, 'no_picks', False))
    pool = Pool(out, args.jobs, archive_of(args))
    if 'dna' in strategies:                     # a job of the full run (reused there): DNA's search loads it
        pool.run({'dna_teacher': named['dna_teacher']})
    first = {s: next(spec for spec in specs.values() if spec['strategy'] == s) for s in strategies}
    probes = {f'plan_{s}': dict(kind='plan_search', search=dict(spec, work_dir=str(out / 'plan' / 'runs' / s)))
              for s, spec in first.items()}
    probes['plan_standalone'] = dict(kind='plan_standalone', standalone=next(iter(gt_jobs.values())))
    done = Pool(out / 'plan', args.jobs).run(probes)
    if reusable_groundtruth(p, out, data) is not None:
        gt_jobs = {}                            # the full run takes the kept ground truth and trains none of it
    stored = {n: r for n, spec in {**named, **gt_jobs}.items()
              if not callable(spec) and (r := pool.stored(n, spec)) is not None}
    res = {'params': p, 'strategies': strategies, 'jobs': args.jobs, 'probes': done,
           **project(p, done, named, needs, gt_jobs, stored, args.jobs)}
    atomic_write_text(out / 'plan.json', json.dumps(res, indent=2) + '\n')
    print(plan_table(res))
    return res


def plan_table(res: dict) -> str:
    p = res['params']
    lines = ['| job | projected seconds | from |', '|---|---|---|']
    lines += [f"| {n} | {s:.0f} | {res['parts'][n]} |" for n, s in res['seconds'].items()]
    firsts = ', '.join(f"{n.removeprefix('plan_')} {r['epoch_seconds']:.0f} s" for n, r in res['probes'].items())
    lines += ['', f"First epochs (at --jobs {res['jobs']}): {firsts}.",
              f"Projected wall time of the full run at --jobs {res['jobs']}: {res['wall'] / 3600:.2f} h "
              f"({len(res['strategies'])} strategies x {p['seeds']} seeds, {p['search_epochs']} supernet epochs x "
              f"{p['search_train']} images; stored jobs count with their measured time, a ground truth kept for "
              f"this recipe with none), of which this command still runs "
              f"{res.get('wall_remaining', res['wall']) / 3600:.2f} h (stored jobs are read back, not rerun). "
              f"Choose --search-epochs / --search-train / --strategies / --no-picks so that "
              f"it fits, then run the same command without --plan.", '']
    return '\n'.join(lines)
