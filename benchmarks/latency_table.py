#!/usr/bin/env python
"""How well a latency lookup table predicts whole subnets on this device (docs/latency.md).

    python benchmarks/latency_table.py --res 224 --threads 1            # the paper's space at 224 px
    python benchmarks/latency_table.py --res 64 --threads 1
    python benchmarks/latency_table.py --table t.json                   # check a table measured before
                                                         (refused if --space / --res are given and differ)
    python benchmarks/latency_table.py --quick                          # seconds: proves the script runs
    python benchmarks/latency_table.py --mode backbone --input-size 800 1344   # a detector's backbone, 1333x800

Measures the table (or loads ``--table``, refused when it is of another space or resolution), then
times ``--fit`` + ``--archs`` distinct archs drawn uniformly over the space (depths and ops) end to
end as timm subnets with the table's threads, batch, device and runtime. Reports, over the
``--archs`` evaluation archs, the mean and worst absolute % error and Kendall's tau of the plain sum
of table entries, and of the sum under a global linear correction fitted on the ``--fit`` archs
only (held out from the evaluation; a table that already holds a correction is evaluated with its
own). ``--save-table`` writes the table with the fitted correction. ``--anchor`` measures an anchored
table (the archs are then timed against its anchor too). Goal on one CPU thread: mean error <= 10 %,
tau >= 0.8.
"""
import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / 'tools'))

import numpy as np  # noqa: E402

from cream_det.utils.cli import run_cli  # noqa: E402
from latency_table import add_target_args, target_size  # noqa: E402

GOAL_MEAN_PCT, GOAL_TAU = 10.0, 0.8


def _report(name: str, predicted: np.ndarray, measured: np.ndarray) -> dict:
    from cream_det.models.latency import prediction_errors
    from cream_det.search.ranking import kendall_tau
    r = dict(prediction_errors(predicted, measured), tau=kendall_tau(predicted, measured))
    print(f'{name} mean abs error: {r["mean_abs_pct"]:.2f} %')
    print(f'{name} worst abs error: {r["worst_abs_pct"]:.2f} %')
    print(f'{name} kendall tau: {r["tau"]:.3f}')
    return r


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_target_args(p)
    p.add_argument('--table', help='evaluate this table file instead of measuring one (its settings are used)')
    p.add_argument('--archs', type=int, default=50, help='evaluation archs (default 50)')
    p.add_argument('--fit', type=int, default=30, help='held-out archs the corrections are fitted on (default 30)')
    p.add_argument('--correction', default='global', choices=('global', 'stage'),
                   help='the correction --save-table keeps (default global)')
    p.add_argument('--arch-warmup', type=int, default=5)
    p.add_argument('--arch-repeats', type=int, default=20)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--save-table', help='write the table, with the --correction fitted here, to this file')
    p.add_argument('--json', help='write every measurement and figure to this file')
    p.add_argument('--quick', action='store_true',
                   help='tiny settings to prove the script works (32 px, 10 + 8 archs, 3 repeats): figures are void')
    p.set_defaults(space=None, res=None, mode=None)      # with --table: checked against the table only when given
    args = p.parse_args(argv)
    if args.quick:
        args.archs, args.fit, args.warmup, args.repeats, args.arch_warmup, args.arch_repeats = 8, 10, 1, 3, 1, 3
        if not args.table:
            args.res = args.res or 32

    from cream_det.errors import LatencyTableError
    from cream_det.models.latency import CORRECTIONS, LatencyTable, fit_correction, resolve_space
    from cream_det.models.latency_measure import (measure_archs, measure_table, nominal_resolution, sample_archs,
                                                   stderr_progress, table_timing)
    from cream_det.utils.io import atomic_write_text
    t0 = time.perf_counter()
    size = target_size(args)
    if args.table:
        table = LatencyTable.load(args.table)
        space = table.space
        if args.space is not None or size is not None or args.mode is not None:
            table.check(space if args.space is None else resolve_space(args.space), size or table.resolution,
                        source=f'latency table {args.table}', mode=args.mode)
    else:
        space = resolve_space(args.space or 'cream_mbv3')
        table = measure_table(space, size or 224, batch=args.batch, num_classes=args.num_classes,
                              device=args.device, runtime=args.runtime, threads=args.threads, warmup=args.warmup,
                              repeats=args.repeats, progress=stderr_progress(20), mode=args.mode or 'classifier',
                              anchor=args.anchor)
    t_table = time.perf_counter() - t0
    print(f'table: {table.describe()}, {table.device} '
          f'({table.device_name}), {table.runtime}, {table.threads} thread(s), '
          f'{"loaded from " + args.table if args.table else f"measured in {t_table:.1f} s"}'
          + (f', anchored at {table.anchor_ms:.3f} ms (archs timed against the same anchor)'
             if table.anchor_ms else ''))

    res = nominal_resolution(space, table.input_size)
    fit = sample_archs(space, res, args.fit, num_classes=table.num_classes, seed=args.seed)
    evals = sample_archs(space, res, args.archs, num_classes=table.num_classes, seed=args.seed + 1, exclude=fit)
    timing = table_timing(table, args.arch_warmup, args.arch_repeats)
    t1 = time.perf_counter()
    order = np.random.default_rng(args.seed).permutation(len(fit) + len(evals))   # fit and eval archs interleaved:
    measured = np.empty(len(order))                                                # a drifting machine biases neither
    measured[order] = measure_archs([(fit + evals)[i] for i in order], progress=stderr_progress(5), **timing)
    print(f'archs measured: {len(fit)} fit + {len(evals)} evaluation in {time.perf_counter() - t1:.1f} s')
    codes = np.stack([a.encode() for a in fit + evals])
    c_fit, c_eval, m_fit, m_eval = codes[:len(fit)], codes[len(fit):], measured[:len(fit)], measured[len(fit):]
    print(f'measured latency min: {m_eval.min():.3f} ms')
    print(f'measured latency max: {m_eval.max():.3f} ms')
    plain = table.with_correction(None)
    predictions = {'sum of entries': plain.predict_codes(c_eval)}
    tables = {}
    if table.correction is not None:
        tables[f"table's {table.correction.kind} correction"] = table
    for kind in CORRECTIONS if fit else ():
        try:
            tables[f'{kind} correction'] = plain.with_correction(fit_correction(plain, c_fit, m_fit, kind))
        except LatencyTableError as e:
            print(f'{kind} correction: not fitted ({e})')
    for name, t in tables.items():
        c = t.correction
        print(f'{name} scales: {" ".join(f"{v:.4f}" for v in c.scales)} x')
        print(f'{name} offset: {c.offset:.3f} ms')
        print(f'{name} fitted on: {c.fit_archs} archs')
        predictions[name] = t.predict_codes(c_eval)
    figures = {name: _report(name, pred, m_eval) for name, pred in predictions.items()}
    best = min(figures, key=lambda k: figures[k]['mean_abs_pct'])
    met = figures[best]['mean_abs_pct'] <= GOAL_MEAN_PCT and figures[best]['tau'] >= GOAL_TAU
    print(f'goal (mean <= {GOAL_MEAN_PCT:g} %, tau >= {GOAL_TAU:g}): {"met" if met else "not met"} '
          f'(lowest mean error: {best})')
    if args.save_table:
        kept = tables.get(f'{args.correction} correction', table)
        kept.save(args.save_table)
        print(f'table saved: {args.save_table} ({kept.correction.kind if kept.correction else "no"} correction)')
    print(f'ratio predicted/measured ({best}, mean): {float(np.mean(predictions[best] / m_eval)):.3f}')
    if args.json:
        atomic_write_text(args.json, json.dumps({
            'settings': {k: v for k, v in vars(args).items()}, 'table': table.to_dict(), 'figures': figures,
            'corrections': {name: t.correction.to_dict() for name, t in tables.items()},
            'fit': [{'arch': a.to_dict(), 'sum_ms': float(plain.predict_codes(c)), 'measured_ms': float(m)}
                    for a, c, m in zip(fit, c_fit, m_fit)],
            'eval': [dict({'arch': a.to_dict(), 'measured_ms': float(m)},
                          **{name: float(pred[i]) for name, pred in predictions.items()})
                     for i, (a, m) in enumerate(zip(evals, m_eval))]}, indent=1))


if __name__ == '__main__':
    run_cli(main)
