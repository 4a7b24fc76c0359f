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
    and, on the same supernet, data and number of optimizer steps, one supernet per
    strategy and seed — Cream with the meta matcher, with the top-1 board teacher and with a random
    board teacher, Cream on its authors' schedule (warm-up 21/120 of the search, board entries judged on
    1,024 images), that schedule with the top-1 teacher, and with a late start (half the search), SPOS,
    DNA (teacher: the space's largest path trained stand-alone, or one in the middle of both knobs with
    ``--gt-select knobs``), MixPath (in its own multi-path MACs range) — each trained by
    ``tools/search.py``'s own code (``run_search``: the Runner, the strategy's final pick, arch.json).
    ``--strategies`` and ``--no-picks`` leave out what a run cannot afford; ``--plan`` times the first
    epoch of each kind of job and projects the run's wall time. It reports

    - convergence: the mean inherited top-1 (BN recalibrated) of a fixed set of random in-range
      paths at evenly spaced epochs (DNA: its summed block rating instead: its supernet has no
      trained classifier);
    - ranking: Kendall tau of each supernet's scores of the ground-truth archs (5,000 held-out images)
      against their stand-alone top-1 (mean of the ground truth's seeds), mean +- std over seeds, beside
      each strategy's self-consistency (seed vs seed tau of its own scores; its tau is marked
      uninterpretable under 0.5) and the taus of MACs, params, k7 and e6 layers alone;
    - Cream minus SPOS on every convergence path, paired by seed, with a bootstrap interval;
    - Cream's per-epoch report (m, board accuracy, teacher minus student) over the epochs;
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
    python benchmarks/nas_proxy.py compare --jobs 2 --plan      # the run's projected wall time
    python benchmarks/nas_proxy.py compare --jobs 2             # everything (hours: --plan says how many)
    python benchmarks/nas_proxy.py compare --quick              # about a minute: checks the harness
"""
from __future__ import annotations

import argparse
import sys

from cream_det.models.subnet import HEAD_INITS

from .comparison import compare
from .ground_truth import groundtruth
from .jobs import run_job
from .learning import learnability
from .params import ARCHIVE_REL, FULL, GT_KNOBS, STRATEGIES, TASKS
from .planning import plan
from .pool import archive


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
            g.add_argument('--strategies', nargs='+', choices=STRATEGIES,
                           help='the arms to run (default: all); leave out those the run cannot afford, e.g. '
                                'cream_random, cream_top1')
            g.add_argument('--plan', action='store_true',
                           help='time the first epoch of every kind of job (--jobs at once, as the run would) and '
                                'print the projected wall time of the whole run with these settings, then stop')
            g.add_argument('--no-picks', action='store_true',
                           help="leave out the retraining of each search's pick (its table column reads 'not "
                                "retrained')")
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
    if args.gt_select not in (None, 'macs', 'knobs', *GT_KNOBS):
        ap.error(f"--gt-select {args.gt_select}: 'macs' (spread over MACs), 'width' (over wide layers, then MACs), "
                 f"'kernel' (over large-kernel layers, then MACs) or 'knobs' (k7 layers x e6 layers at matched MACs)")
    for key in ('head', 'search_head'):
        if getattr(args, key) not in (None, *HEAD_INITS):
            ap.error(f"--{key.replace('_', '-')} {getattr(args, key)}: one of {', '.join(HEAD_INITS)} ('timm': the "
                     f"classifier as timm and the authors init it)")
    if args.band is not None and not 0 <= args.band[0] < args.band[1] <= 100:
        ap.error(f'--band {args.band[0]:g} {args.band[1]:g}: two percentiles, 0 <= low < high <= 100')
    if getattr(args, 'plan', False):
        return plan(args)
    {'groundtruth': groundtruth, 'compare': compare, 'learnability': learnability}[args.stage](args)
