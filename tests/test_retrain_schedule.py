"""The retrain configs' lr schedules are the authors': timm's own ``create_scheduler``, computed.

The authors (microsoft/Cream@4a13c409) hand their yacs config to timm 0.1.20's ``create_scheduler``
(``Cream/tools/retrain.py:237``) after ``convert_lowercase`` (``lib/utils/util.py:135-141``) has
copied every top-level key to its lower-case name, so timm reads the yaml's values and, for the
keys a yaml leaves out, ``lib/config.py``'s defaults (``MIN_LR`` 1e-5, ``COOLDOWN_EPOCHS`` 10, ...).
Here that argument set goes to the installed timm's ``create_scheduler``; the lr it sets each epoch
(``step(epoch + 1)`` after every epoch, ``retrain.py:289``) must equal, within 1e-9, the lr
mmengine's Runner gets from the config (its ``_build_param_scheduler`` and ``ParamSchedulerHook``),
at every iteration of every epoch. The per-iteration switch (``convert_to_iter_based=True``) is
compared with timm's per-update mode (``sched_on_updates``), which the authors did not use.

timm 1.0's ``create_scheduler`` is not 0.1.20's code; the differences that could change these
schedules are checked on the scheduler it builds (``_assert_same_as_timm_0_1_20``).
"""
import argparse
import math
from pathlib import Path

import pytest
import torch
from mmengine.hooks import ParamSchedulerHook
from mmengine.optim import build_optim_wrapper
from mmengine.registry import PARAM_SCHEDULERS
from timm.scheduler import create_scheduler

import cream_det  # noqa: F401  (registers RMSpropTF and the schedulers)
from cream_det.engine import load_config

CFG_DIR = Path(__file__).resolve().parents[1] / 'configs/retrain'
NETS = (14, 43, 114, 287, 481, 604)
TOL = 1e-9

# Cream/experiments/configs/retrain/<n>.yaml, lines 36-45 (identical in all six but SCHED, line 39)
YAML_SCHED = {14: 'step', 43: 'step', 114: 'cosine', 287: 'cosine', 481: 'cosine', 604: 'cosine'}
YAML = dict(LR=0.064, EPOCHS=500, WARMUP_LR=1e-6, DECAY_EPOCHS=2.4, DECAY_RATE=0.973, WARMUP_EPOCHS=3)
# Cream/lib/config.py:73-86, the scheduler keys no retrain yaml sets; SEED is yaml line 6
LIB_CONFIG = dict(LR_NOISE_PCT=0.67, LR_NOISE_STD=1.0, MIN_LR=1e-5, COOLDOWN_EPOCHS=10, PATIENCE_EPOCHS=10,
                  LR_NOISE=None, SEED=42)


def authors_args(net: int, **extra) -> argparse.Namespace:
    """What the authors' create_scheduler(cfg, ...) read: lower-case copies of the merged config."""
    cfg = {**LIB_CONFIG, **YAML, 'SCHED': YAML_SCHED[net]}
    return argparse.Namespace(**{k.lower(): v for k, v in cfg.items()}, **extra)


def _assert_same_as_timm_0_1_20(sched, num_epochs: int, net: int, per_update: bool) -> None:
    """The installed timm builds what 0.1.20 built from these arguments (0.1.20's
    timm/scheduler/scheduler_factory.py:22-66 and cosine_lr.py / step_lr.py ``_get_lr``)."""
    # 1.0 defaults StepLRScheduler to warmup_prefix=True; create_scheduler passes False, 0.1.20 had none
    assert sched.warmup_prefix is False
    assert sched.noise_range_t is None                          # LR_NOISE None
    assert sched.t_in_epochs is (not per_update)                # 0.1.20 hard-codes per epoch
    if YAML_SCHED[net] == 'cosine':
        # 0.1.20: t_mul=1, cycle_limit=1, decay_rate per cycle (never used in one cycle); after the
        # cycle lr_min; epochs = t_initial + cooldown_epochs. 1.0: the same with cycle_* and k_decay
        assert (sched.cycle_mul, sched.cycle_limit, sched.k_decay) == (1.0, 1, 1.0)
        assert num_epochs == YAML['EPOCHS'] + LIB_CONFIG['COOLDOWN_EPOCHS']
    else:
        assert num_epochs == YAML['EPOCHS']                     # no cool-down for step


def timm_lrs(net: int, epoch_length: int, per_update: bool = False) -> tuple[list[list[float]], int]:
    """lr of every iteration of every epoch, as the authors' training loop sets it through timm."""
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=YAML['LR'])
    if per_update:
        args = authors_args(net, sched_on_updates=True)
        sched, num_epochs = create_scheduler(args, opt, updates_per_epoch=epoch_length)
    else:
        sched, num_epochs = create_scheduler(authors_args(net), opt)
    _assert_same_as_timm_0_1_20(sched, num_epochs, net, per_update)
    out, updates = [], 0
    for epoch in range(num_epochs):                     # Cream/lib/core/retrain.py:27-128
        row = []
        for _ in range(epoch_length):
            row.append(opt.param_groups[0]['lr'])
            updates += 1
            sched.step_update(num_updates=updates)
        out.append(row)
        sched.step(epoch + 1)                           # Cream/tools/retrain.py:289
    return out, num_epochs


def mmengine_lrs(cfg, epoch_length: int) -> tuple[list[list[float]], int]:
    """lr of every iteration of every epoch as mmengine's Runner sets it from ``cfg``."""
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))    # decay and no-decay groups
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    assert not (cfg.get('auto_scale_lr') or {}).get('enable', False), 'the authors never rescale the lr'
    max_epochs = cfg.train_cfg.max_epochs
    scheds = []
    for s in cfg.param_scheduler:                       # Runner._build_param_scheduler
        s = dict(s)
        s.setdefault('end', max_epochs if s.get('by_epoch', True) else max_epochs * epoch_length)
        scheds.append(PARAM_SCHEDULERS.build(s, default_args=dict(optimizer=wrapper, epoch_length=epoch_length)))
    runner = type('Runner', (), {'param_schedulers': scheds})()
    hook = ParamSchedulerHook()
    out = []
    for _ in range(max_epochs):
        row = []
        for i in range(epoch_length):
            lrs = {g['lr'] for g in wrapper.optimizer.param_groups}
            assert len(lrs) == 1, lrs
            row.append(lrs.pop())
            wrapper.step()                              # no gradients: only the step counter moves
            hook.after_train_iter(runner, i)
        out.append(row)
        hook.after_train_epoch(runner)
    return out, max_epochs


def _max_diff(a: list[list[float]], b: list[list[float]]) -> float:
    assert len(a) == len(b)
    return max(abs(x - y) for ra, rb in zip(a, b) for x, y in zip(ra, rb, strict=True))


@pytest.mark.parametrize('net', NETS)
def test_per_net_schedule_is_timms_create_scheduler(net):
    cfg = load_config(CFG_DIR / f'cream-{net}_imagenet.py')
    assert cfg.optim_wrapper.optimizer.lr == YAML['LR']
    ours, epochs = mmengine_lrs(cfg, epoch_length=3)
    theirs, timm_epochs = timm_lrs(net, epoch_length=3)
    assert epochs == timm_epochs
    assert _max_diff(ours, theirs) < TOL
    assert all(len(set(row)) == 1 for row in ours)              # per epoch, as t_in_epochs
    # landmarks, from timm's formulas (not from either implementation)
    assert ours[0][0] == pytest.approx(YAML['WARMUP_LR'], abs=TOL)
    assert ours[2][0] == pytest.approx(1e-6 + 2 * (0.064 - 1e-6) / 3, abs=TOL)
    if YAML_SCHED[net] == 'step':
        assert ours[3][0] == pytest.approx(0.064 * 0.973, abs=TOL)             # 3 // 2.4 = 1
        assert ours[12][0] == pytest.approx(0.064 * 0.973 ** 5, abs=TOL)       # 12 // 2.4 = 5 (float floor)
    else:
        assert ours[3][0] == pytest.approx(1e-5 + (0.064 - 1e-5) / 2 * (1 + math.cos(math.pi * 3 / 500)), abs=TOL)
        assert ours[499][0] > 1e-5 and ours[500][0] == ours[509][0] == pytest.approx(1e-5, abs=TOL)


@pytest.mark.parametrize('net', (43, 287))
def test_per_iteration_switch_is_timms_per_update_mode(net):
    """convert_to_iter_based=True gives timm's sched_on_updates schedule (not the authors' runs)."""
    cfg = load_config(CFG_DIR / f'cream-{net}_imagenet.py',
                      {'param_scheduler.0.convert_to_iter_based': True})
    ours, _ = mmengine_lrs(cfg, epoch_length=5)
    theirs, _ = timm_lrs(net, epoch_length=5, per_update=True)
    assert _max_diff(ours, theirs) < TOL
    assert ours[0][1] > ours[0][0]                              # the warm-up moves inside an epoch


def test_the_comparison_rejects_plausible_wrong_schedules(tmp_path):
    """The old configs (mmengine's LinearLR + a per-iteration 2.4-epoch step) and a naive mmengine
    cosine (LinearLR + CosineAnnealingLR with eta_min, no cool-down) are not the authors' schedule."""
    old_step = [dict(type='LinearLR', start_factor=1e-6 / 0.064, end_factor=1.0, by_epoch=True, begin=0, end=3,
                     convert_to_iter_based=True),
                dict(type='FractionalEpochStepLR', step_size=2.4, gamma=0.973, by_epoch=True, begin=0,
                     convert_to_iter_based=True)]
    cfg = load_config(CFG_DIR / 'cream-14_imagenet.py', {'param_scheduler': old_step})
    assert _max_diff(mmengine_lrs(cfg, 3)[0], timm_lrs(14, 3)[0]) > 1e-4
    naive = [dict(type='LinearLR', start_factor=1e-6 / 0.064, end_factor=1.0, by_epoch=True, begin=0, end=3),
             dict(type='CosineAnnealingLR', T_max=500, eta_min=1e-5, by_epoch=True, begin=0, end=500)]
    cfg = load_config(CFG_DIR / 'cream-287_imagenet.py', {'param_scheduler': naive})
    assert _max_diff(mmengine_lrs(cfg, 1)[0], timm_lrs(287, 1)[0]) > 1e-4


@pytest.mark.parametrize('net', NETS)
def test_paper_variant_differs_from_the_yaml_in_augmentation_only(net):
    yaml_cfg = load_config(CFG_DIR / f'cream-{net}_imagenet.py')
    paper = load_config(CFG_DIR / f'cream-{net}_imagenet_paper.py')
    ds, pds = yaml_cfg.train_dataloader.dataset, paper.train_dataloader.dataset
    assert (ds.auto_augment, ds.re_prob) == ('rand-m9-mstd0.5', 0.2)        # yaml:48-49
    assert (pds.auto_augment, pds.re_prob) == ('original', 0.0)             # the paper: AutoAugment
    assert {**pds, 'auto_augment': None, 're_prob': None} == {**ds, 'auto_augment': None, 're_prob': None}
    for key in ('param_scheduler', 'optim_wrapper', 'train_cfg', 'model', 'auto_scale_lr', 'custom_hooks'):
        assert paper[key] == yaml_cfg[key], key
