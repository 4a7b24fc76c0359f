"""The run's settings (FULL, QUICK, a task's own) and what a job's spec and its digest are made of.

A stored result is keyed by the digest of its spec (``spec_digest``), so these keys and the way a spec is
built decide which results a rerun reuses: change them and every committed result runs again.
"""
from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

from cream_det.data import glyphs, shapes

ROOT = Path(__file__).resolve().parents[2]
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
# 2-10, 711 s); points: convergence epochs; calib: BN-recalibration batches per scored path (5 x 64 images; it was 2
# when the committed glyphs run was made); search_val: 5,000 held-out images every supernet score is read on (it was
# 1,000, whose binomial error at 20-35 % top-1, 1.3-1.5 points, was as large as the scores' spread over archs:
# issue 32); conv_val: the held-out images (a fixed random subset) the convergence points score the paths on, fewer
# than the ground-truth archs' scores read, since 50 paths x 5 points on all 5,000 would cost a search ~5 times the
# 190 s its convergence took on 1,000; search_head: the
# supernets' classifier init, 'timm' (the authors') or 'zero' (the authors' range is sized for 1,000 classes; at
# 10 a single-path supernet trained at 18 % after 1,500 steps with it, 46 % from zero: docs/proxy_task.md)
FULL = dict(task='shapes', size=32, num_train=40000, num_val=5000, search_train=40000, search_val=5000, archs=16,
            band=[0.0, 100.0], gt_select='width',
            paths=50, gt_seeds=2, seeds=3, epochs=2, warmup=1.0, clip=5.0, head='timm', search_epochs=10, points=5,
            depths=1, batch=64, lr=0.2, search_lr=0.05, calib=5, search_head='timm', conv_val=1000,
            board_images=1024)
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
                            search_head='zero', gt_seeds=4)}
# QUICK checks the harness, not the ground truth: unclipped, so its few steps move the nets off chance (clipped at 5,
# every quick net stayed at 10 % and every tau was undefined)
QUICK = dict(task='shapes', size=32, num_train=200, num_val=100, search_train=200, search_val=100, archs=4,
             band=[25.0, 75.0], gt_select='macs',
             paths=6, gt_seeds=2, seeds=1, epochs=1, warmup=0.5, clip=0.0, head='timm', search_epochs=5, points=5,
             depths=1, batch=50, lr=0.1, search_lr=0.1, calib=1, search_head='timm', conv_val=50,
             board_images=100)
# what a job's stored result depends on (its digest covers only these, so that a new stand-alone recipe keeps the
# searches and a new search budget keeps the ground truth): a stand-alone training, a search, the ground truth
STANDALONE_KEYS = ('task', 'size', 'num_train', 'num_val', 'epochs', 'warmup', 'clip', 'head', 'batch', 'lr')
SEARCH_KEYS = ('task', 'size', 'search_train', 'search_val', 'paths', 'search_epochs', 'points', 'depths', 'batch',
               'search_lr', 'calib', 'search_head', 'conv_val', 'board_images')
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
# the searches, scores and picks of the glyphs run docs/evidence.md reads ("The glyphs: three seeds of every
# strategy"), kept as they were made: the search specs have since grown the digest of their whole config, MixPath
# its own MACs range and the held-out set 5,000 images, so no run reuses them; its ground truth and DNA teacher,
# whose specs did not change, stay in ARCHIVE and are reused
ARCHIVE_V1 = ROOT / 'benchmarks/results/nas_proxy_v1'
STRATEGIES = ('cream_meta', 'cream_top1', 'cream_random', 'cream_authors', 'cream_authors_top1', 'cream_late', 'spos',
              'dna', 'mixpath')
DEMO_CONFIG = {'cream_meta': 'cream_demo.py', 'cream_top1': 'cream_demo.py', 'cream_random': 'cream_demo.py',
               'cream_authors': 'cream_demo.py', 'cream_authors_top1': 'cream_demo.py', 'cream_late': 'cream_demo.py',
               'spos': 'spos_demo.py', 'dna': 'dna_demo.py', 'mixpath': 'mixpath_demo.py'}
# the Cream arms' schedules, by strategy: (teacher, warm-up as a fraction of the search or None for the harness's
# first schedule, ``max(1, epochs // 6)`` epochs, board entries scored on ``board_images`` or on one batch).
# cream_authors: the authors' (CE alone while epoch <= 20 of 120: 21/120 of the search; entries scored on 1,024
# images); cream_authors_top1: that schedule with the top-1 board teacher, the matcher's fixed-teacher control on the
# authors' schedule; cream_late: the authors' with distillation from half-way, the test of "distillation starts too
# early"
CREAM_ARMS = {'cream_meta': ('meta', None, False), 'cream_top1': ('top1', None, False),
              'cream_random': ('random', None, False), 'cream_authors': ('meta', 21 / 120, True),
              'cream_authors_top1': ('top1', 21 / 120, True), 'cream_late': ('meta', 0.5, True)}
# board_images (a setting, --board-images): the authors judge a board entry on the step's 8 x 128 = 1,024 training
# images (docs/fidelity.md, Cream); the arms that follow them judge it on as many, in batches of the search's own size
# (1,024 / 64 = 16 batches: Cream's board_eval_batches), at the cost of a no-grad forward of the 15 batches before
# each step after the warm-up; fewer cut that cost and widen the entries' error (5.0 points at 20 % on 64 images,
# 1.25 on 1,024)
#: where the strategies' demo configs (and their ``_base_`` chain) are read; a test points it at a copy
CONFIG_DIR = ROOT / 'configs' / 'search'
LARGEST_OP = 5                      # k7e6 in the Cream space's choice order: the DNA teacher is all k7e6


def board_eval_batches(p: dict) -> int:
    """The batches a board entry is judged on for ``board_images`` at the search's batch size (at least one, at most
    an epoch's)."""
    return max(1, min(round(p['board_images'] / p['batch']), p['search_train'] // p['batch']))


def task_of(p: dict) -> str:
    return p.get('task', LATER_KEYS['task'])


def classes(p: dict) -> int:
    return TASKS[task_of(p)][1]


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


def settings(args: argparse.Namespace) -> dict:
    """QUICK or FULL, then the task's own FULL settings (``TASK_FULL``), then the flags given."""
    given = {k: v for k, v in vars(args).items() if v is not None and k in FULL}
    base = QUICK if args.quick else {**FULL, **TASK_FULL.get(given.get('task', FULL['task']), {})}
    return {**base, **given}
