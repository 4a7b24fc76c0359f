"""What a run reports: the ground truth's stability, the comparison's table, its wall time and its figure."""
from __future__ import annotations

from typing import Any

import numpy as np

from cream_det.search.ranking import expected_tau, seed_noise, split_half_taus
from cream_det.utils.io import png_bytes

from .statistics import SELF_CONSISTENCY_BAR


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
          'cream_random': 'Cream (random board teacher)', 'cream_authors': "Cream (authors' schedule)",
          'cream_authors_top1': "Cream (authors' schedule, top-1 teacher)",
          'cream_late': 'Cream (late start, half the search)', 'spos': 'SPOS', 'dna': 'DNA', 'mixpath': 'MixPath'}
SHORT = {'cream_meta': 'Cream\nmeta', 'cream_top1': 'Cream\ntop-1', 'cream_random': 'Cream\nrandom',
         'cream_authors': 'Cream\nauthors', 'cream_authors_top1': 'Cream\nauth. top-1', 'cream_late': 'Cream\nlate',
         'spos': 'SPOS', 'dna': 'DNA',
         'mixpath': 'MixPath'}
# Cream's per-epoch report (``cream_epochs.jsonl``, keys: ``cream_det/search/cream_epochs.py``): the fields the figure
# plots (``None`` in an epoch with nothing to measure, e.g. all warm-up), with their titles
CREAM_EPOCH_PLOTS = (('m_mean', 'matching weight m (mean over the epoch)'),
                     ('board_acc_mean', "board entries' accuracy at the epoch's end (%)"),
                     ('teacher_minus_student_acc', 'teacher minus student top-1 (points)'))


def _ms(v: Any, digits: int = 2) -> str:
    v = np.asarray(v, dtype=float)
    return f'{v.mean():.{digits}f} ± {v.std(ddof=1) if len(v) > 1 else 0.0:.{digits}f}'


def _self(r: dict) -> str:
    """A strategy's agreement with itself, and whether its tau against the ground truth can be read."""
    mark = '' if r['interpretable'] else f' — tau uninterpretable (< {SELF_CONSISTENCY_BAR})'
    if not r['seed_pairs']:
        return f'one seed: no estimate{mark}'
    return f"{r['self_tau']:.2f} ({', '.join(f'{t:.2f}' for t in r['seed_pairs'])}){mark}"


def results_table(res: dict) -> str:
    p, gt = res['params'], res['groundtruth']
    epochs = res['rows'][0]['convergence_epochs']
    head = ('| strategy | mean inherited top-1 of the paths at epoch ' + ' / '.join(str(e) for e in epochs)
            + ' | Kendall tau vs stand-alone | self-consistency: seed vs seed tau of its scores (pairs) | tau of its '
            'seed-averaged scores | pick: MACs | pick: stand-alone top-1 |')
    lines = [head, '|---|---|---|---|---|---|---|']
    for r in res['rows']:
        curve = np.asarray(r['convergence']).mean(0)
        conv = ' / '.join(f'{v:.1f}' if r['strategy'] != 'dna' else f'{v:.2f}' for v in curve)
        if r['strategy'] == 'dna':
            conv = f'(minus summed block rating) {conv}'
        picked = 'not retrained' if r['pick_top1'] is None else f"{_ms(r['pick_top1'])} %"
        lines.append(f"| {LABELS[r['strategy']]} | {conv} | {_ms(r['tau'])} | {_self(r)} | {r['tau_of_mean']:.2f} | "
                     f"{np.mean(r['pick_macs']) / 1e6:.2f}M | {picked} |")
    gtop = np.mean(gt['top1'], axis=0)
    # the bars a supernet has to clear to say more than "bigger is better" or "more k7 is better": ranking the archs
    # by MACs alone, by params, by their k7 or e6 layers
    lines.append(f"| MACs alone (no supernet) | | {gt['tau_macs_vs_top1']:.2f} | | | | |")
    lines += [f'| {name} alone (no supernet) | | {tau:.2f} | | | | |'
              for name, tau in res['baselines'].items() if name != 'MACs']
    lines += [''] + paired_lines(res)
    lines += ['', f"Every tau is against the ground truth's mean over its {len(gt['top1'])} seeds. "
              f"{len(gtop)} ground-truth archs in {res['macs_range'][0] / 1e6:.2f}-{res['macs_range'][1] / 1e6:.2f}M "
              f"MACs, stand-alone {p['epochs']} epochs x {p['num_train']} images, top-1 {gtop.min():.1f}-{gtop.max():.1f} %; "
              f"tau seed vs seed {', '.join(f'{t:.2f}' for t in gt['tau_seed_vs_seed'])} ({stability(gt['top1'])}), "
              f"tau MACs vs top-1 "
              f"{gt['tau_macs_vs_top1']:.2f}. {p['paths']} convergence paths; {p['seeds']} seed(s) per strategy, "
              f"mean ± std; supernets {p['search_epochs']} epochs x {p['search_train']} images. "
              f"{wall_time(res)}", '']
    return '\n'.join(lines)


def paired_lines(res: dict) -> list[str]:
    """Each Cream arm minus SPOS on the convergence paths at the last point, paired by seed and path."""
    if not res['paired']:
        return ['No paired difference: it needs SPOS and at least one Cream arm among the strategies.']
    first = next(iter(res['paired'].values()))
    epoch = res['rows'][0]['convergence_epochs'][-1]
    lines = [f"Cream minus SPOS, inherited top-1 of the {first['paths']} convergence paths at epoch {epoch}, paired by "
             f"seed and path ({first['seeds']} seeds x {first['paths']} paths = {first['pairs']} pairs; "
             f"{first['level']:.0%} interval: bootstrap over seeds, then paths within each seed):", '',
             '| Cream arm | mean difference (points) | interval | per seed | seeds where Cream leads |',
             '|---|---|---|---|---|']
    for s, d in res['paired'].items():
        lines.append(f"| {LABELS[s]} | {d['mean']:+.2f} | [{d['lo']:+.2f}, {d['hi']:+.2f}] | "
                     f"{' / '.join(f'{v:+.1f}' for v in d['per_seed'])} | {d['ahead']} of {d['seeds']} |")
    return lines


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
    """Convergence, tau and picks by strategy; below them, where Cream's searches kept their per-epoch report, its
    m, board accuracy and teacher-minus-student accuracy over the epochs (mean over seeds, one line per arm)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    cream = [r for r in res['rows'] if r.get('cream_epochs')]
    fig, axes = plt.subplots(2 if cream else 1, 3, figsize=(13, 7.6 if cream else 3.8), dpi=110, squeeze=False)
    a, b, c = axes[0]
    rows = [r for r in res['rows'] if r['strategy'] != 'dna']
    for r in rows:
        curve = np.asarray(r['convergence'])
        a.errorbar(r['convergence_epochs'], curve.mean(0), yerr=curve.std(0), capsize=2, label=LABELS[r['strategy']])
    a.set(xlabel='supernet epoch', ylabel='mean inherited top-1 of the paths (%)', title='convergence')
    a.legend(fontsize=7)
    names = [SHORT[r['strategy']] for r in res['rows']]
    for ax, key, title in ((b, 'tau', 'Kendall tau vs stand-alone'), (c, 'pick_top1', 'pick, stand-alone top-1 (%)')):
        for i, r in enumerate(res['rows']):
            if r[key] is None:
                continue
            v = np.asarray(r[key], dtype=float)
            ax.bar(i, v.mean(), color='tab:blue' if key != 'tau' or r['interpretable'] else 'lightgrey', alpha=0.35)
            ax.scatter([i] * len(v), v, color='tab:blue', s=14, zorder=3)
        ax.set_xticks(range(len(names)), names, fontsize=7.5)
        ax.set_title(title, fontsize=10)
    b.text(0.01, 0.01, 'grey bar: the supernet disagrees with itself (seed vs seed tau < 0.5)', fontsize=6,
           transform=b.transAxes, color='grey')
    for value, text, style in ((np.mean(res['groundtruth']['tau_seed_vs_seed']), 'ground truth seed vs seed', '--'),
                               *((tau, f'{name} alone', ':') for name, tau in res['baselines'].items())):
        b.axhline(float(value), color='grey', ls=style, lw=1)
        b.text(0, float(value), text, fontsize=6, va='bottom', color='grey')
    picked = [v for r in res['rows'] if r['pick_top1'] is not None for v in r['pick_top1']]
    if picked:
        c.set_ylim(max(0.0, min(picked) - 5), None)
    for ax, (key, label) in zip(axes[1] if cream else (), CREAM_EPOCH_PLOTS):
        for r in cream:
            per_seed = np.array([[e[key] for e in seed] for seed in r['cream_epochs']], dtype=float)
            ax.plot(np.arange(1, per_seed.shape[1] + 1), np.nanmean(per_seed, 0), marker='o', ms=3,
                    label=LABELS[r['strategy']])
        ax.set(xlabel='supernet epoch', title=label)
        ax.title.set_fontsize(9)
    if cream:
        axes[1][0].legend(fontsize=6)
    fig.tight_layout()
    return png_bytes(fig)
