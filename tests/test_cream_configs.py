"""The Cream search configs say what they claim: the authors' data and schedule, their switches in the
preset, a meta-update count that is not zero, and the preset runs a demo-sized search end to end."""
import json
from pathlib import Path

import pytest
from mmengine.config import Config

import cream_det  # noqa: F401
from cream_det.engine import load_config
from cream_det.engine.search_run import run_search
from cream_det.errors import ConfigError
from cream_det.models.supernet import Supernet
from cream_det.search.cream import Cream
from cream_det.space import Arch
from cream_det.space.spec import Op, SearchSpace, StageSpec

ROOT = Path(__file__).resolve().parents[1]
SEARCH = ROOT / 'configs/search'
TINY = SearchSpace('tiny_cfg', (StageSpec(8, 2, Op(3, 2), 1),), (Op(3, 2), Op(5, 2)), stem_channels=8,
                   first_block='ds_r1_k3_s1_e1_c8_se0.25', last_channels=16, head_channels=16)
AUTHORS = dict(warmup_epochs=21, board_tiebreak='flops_desc', meta_inner_lr='meta', meta_inner_loss='kd',
               meta_student_step=True, matcher_grad='both', matcher_init='uniform', label_smoothing=0.1,
               selection='per_entry', meta_interval=200, meta_interval_by='epoch_iter', meta_lr=1e-4,
               meta_nesterov=True, meta_clip=1.0, meta_lr_decay=True, board_targets='teacher', board_size=10,
               margin=5.0, slice_size=4, board_acc='train_batch', op_probs=None, constrain_macs=False,
               meta_clip_scope='meta_update', grad_reset='zero', board_eval_batches=1)


def _strategy(cfg):
    st = dict(cfg.model.strategy)
    assert st.pop('type') == 'cream'
    return Cream(Supernet(TINY, (1,), num_classes=cfg.model.num_classes, resolution=32), macs_range=None, seed=0,
                 **st)


def _iters_per_epoch(images, gpus=8, batch=128):
    return images // (gpus * batch)


def test_imagenet_config_searches_imagenet_1k_with_the_authors_schedule():
    cfg = Config.fromfile(str(SEARCH / 'cream_imagenet_0-600.py'))
    assert cfg.data_root == 'data/imagenet' and cfg.model.num_classes == 1000
    assert cfg.train_cfg.max_epochs == 120 and cfg.train_dataloader.batch_size == 128
    ds = cfg.train_dataloader.dataset
    assert (ds.interpolation, ds.re_prob, ds.color_jitter) == ('random', 0.2, 0.4)
    ipe = _iters_per_epoch(1_281_167)
    assert ipe == 1251
    assert 'up to 600 meta updates' in _strategy(cfg).check_schedule(ipe, ipe * 120)[0]


def test_subset_config_still_makes_meta_updates():
    cfg = Config.fromfile(str(SEARCH / 'cream_imagenet100_0-600.py'))
    assert cfg.model.num_classes == 100 and cfg.train_dataloader.dataset.root == 'data/imagenet100_350'
    ipe = _iters_per_epoch(100 * 350)
    assert 'up to 300 meta updates' in _strategy(cfg).check_schedule(ipe, ipe * 120)[0]
    cfg.model.strategy.meta_interval = 200                  # the full-ImageNet interval on the subset
    with pytest.raises(ConfigError, match='no meta update'):
        _strategy(cfg).check_schedule(ipe, ipe * 120)


def test_authors_preset_sets_every_switch_to_the_authors_value():
    st = Config.fromfile(str(SEARCH / 'cream_imagenet_0-600_authors.py')).model.strategy
    assert {k: st[k] for k in AUTHORS} == AUTHORS


@pytest.mark.slow
def test_authors_preset_runs_a_demo_sized_search(imagenet_digits, tmp_path):
    small = dict(batch_size=24, num_workers=0, persistent_workers=False, pin_memory=False)
    opts = {'model.resolution': 64, 'model.num_classes': 10, 'model.depths': (1, 1, 1, 1, 1), 'model.init': 'aligned',
            'model.strategy.warmup_epochs': 1, 'model.strategy.meta_interval': 3, 'model.strategy.board_size': 4,
            'train_dataloader': dict(small, dataset=dict(root=str(imagenet_digits), input_size=64)),
            'search_val_dataloader': dict(small, dataset=dict(root=str(imagenet_digits), input_size=64)),
            'train_cfg.max_epochs': 2, 'param_scheduler.0.end': 2, 'auto_scale_lr.enable': False,
            'optim_wrapper.optimizer.lr': 0.02, 'default_hooks.logger.interval': 5}
    cfg = load_config(SEARCH / 'cream_imagenet_0-600_authors.py', opts, str(tmp_path))
    runner, summary = run_search(cfg)
    strategy = runner.model.strategy
    assert strategy.meta_updates == 3                       # batch indices 3, 6, 9 of the second epoch (10 batches)
    assert summary['final_pick'] == 'board' and len(summary['board']) >= 1
    assert Arch.load(tmp_path / 'arch.json').macs <= 600e6
    log = next(tmp_path.glob('*/*.log')).read_text()
    assert 'up to 3 meta updates' in log and 'cream matcher: 3 meta updates so far' in log
    board = json.loads((tmp_path / 'board.json').read_text())
    accs = [(e['acc'], e['macs']) for e in board['entries']]
    assert accs == sorted(accs, key=lambda a: (-a[0], -a[1]))          # the authors' tie-break
