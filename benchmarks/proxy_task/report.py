"""What a run reports: the ground truth's stability, the comparison's table, its wall time and its figure."""
from __future__ import annotations

from typing import Any

import numpy as np

from cream_det.search.ranking import expected_tau, seed_noise, split_half_taus
from cream_det.utils.io import png_bytes


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
