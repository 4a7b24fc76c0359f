"""mmdet's OWN shipped tools (``mmdet/.mim/tools``) on this project's configs, unchanged.

The contract a detection engineer relies on: copy a config, run mmdet's ``train.py``, ``test.py``,
``get_flops.py``; the only thing the configs ask of mmdet is ``custom_imports=['cream_det']``.
Each tool runs as its own process with nothing of ours on its command line but the config.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import cream_det  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / 'configs/retinanet/retinanet_cream-demo_fpn_digits.py'


def _mmdet_tool(name: str) -> Path:
    import mmdet
    path = Path(mmdet.__file__).parent / '.mim' / 'tools' / name
    assert path.is_file(), f'mmdet ships no {path}'
    return path


def _run(tool: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    # cream_det must be importable (custom_imports), as after `pip install -e .`; nothing else of ours
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS='1')
    r = subprocess.run([sys.executable, str(_mmdet_tool(tool)), *args], capture_output=True, text=True,
                       cwd=cwd, env=env, timeout=900)
    assert r.returncode == 0, f'{tool} failed:\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}'
    return r


def _data_options(coco: Path) -> list[str]:
    root = str(coco) + '/'
    opts = {'train_dataloader.dataset.data_root': root, 'val_dataloader.dataset.data_root': root,
            'test_dataloader.dataset.data_root': root,
            'val_evaluator.ann_file': root + 'annotations/instances_val.json',
            'test_evaluator.ann_file': root + 'annotations/instances_val.json'}
    return [f'{k}={v}' for k, v in opts.items()]


def _logged_map(text: str) -> float | None:
    found = re.findall(r'coco/bbox_mAP: (-?[0-9.]+)', text)
    return float(found[-1]) if found else None


@pytest.mark.slow
def test_mmdet_train_and_test_py_run_the_demo_config(coco_digits, tmp_path):
    """mmdet's train.py: one epoch of the demo config; its test.py then evaluates the checkpoint,
    and agrees with this project's own tools/test.py on it."""
    from cream_det.engine import load_config, test
    work = tmp_path / 'w'
    r = _run('train.py', str(DEMO), '--work-dir', str(work), '--cfg-options', *_data_options(coco_digits),
             'train_cfg.max_epochs=1', 'train_cfg.val_interval=1', 'default_hooks.checkpoint.interval=1',
             cwd=tmp_path)
    ckpt = work / 'epoch_1.pth'
    assert ckpt.is_file(), r.stdout[-2000:]
    assert 'Epoch(train) [1][5/5]' in r.stdout + r.stderr      # 40 images, batch 8: the whole epoch ran
    sd = torch.load(ckpt, map_location='cpu', weights_only=False)['state_dict']
    # the neck's widths came from the backbone ('auto' resolved inside mmdet's build)
    assert [sd[f'neck.lateral_convs.{i}.conv.weight'].shape[1] for i in range(3)] == [40, 96, 320]
    assert 'backbone.net.conv_stem.weight' in sd
    # score_thr 0: a one-epoch model's scores sit near the 0.01 prior, and mmdet's CocoMetric reports
    # nothing at all for a model that detects nothing; with every box kept the evaluation really runs
    keep_all = 'model.test_cfg.score_thr=0.0'
    r = _run('test.py', str(DEMO), str(ckpt), '--work-dir', str(tmp_path / 't'), '--cfg-options',
             *_data_options(coco_digits), keep_all, cwd=tmp_path)
    theirs = _logged_map(r.stdout + r.stderr)
    opts = dict(kv.split('=', 1) for kv in _data_options(coco_digits))
    opts['model.test_cfg.score_thr'] = 0.0
    ours = test(load_config(DEMO, opts, str(tmp_path / 'o')), ckpt).get('coco/bbox_mAP')
    assert theirs is not None and ours is not None, r.stdout[-2000:]
    assert theirs == pytest.approx(ours, abs=1e-3)   # the log prints 3 decimals


@pytest.mark.slow
def test_mmdet_get_flops_on_a_coco_config(coco_digits, tmp_path):
    """get_flops.py reads the val set for its input sizes: pointed at the demo COCO data (128 px images,
    resized by the COCO pipeline to 800x800) it profiles the full RetinaNet + cream_14 of the COCO config."""
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    cfg_path = ROOT / 'configs/retinanet/retinanet_cream-14_fpn_1x_coco.py'
    root = str(coco_digits) + '/'
    r = _run('analysis_tools/get_flops.py', str(cfg_path), '--num-images', '1', '--cfg-options',
             f'val_dataloader.dataset.data_root={root}', 'val_dataloader.dataset.ann_file=annotations/instances_val.json',
             'val_dataloader.dataset.data_prefix.img=val/', cwd=tmp_path)
    out = r.stdout
    assert 'Input shape: (800, 800)' in out, out[-1500:]
    flops = re.search(r'Flops: ([0-9.]+)G', out)
    params = re.search(r'Params: ([0-9.]+)M', out)
    assert flops and params, out[-1500:]
    cfg = Config.fromfile(str(cfg_path))
    init_default_scope('mmdet')
    det = MODELS.build(cfg.model)
    n_params = sum(p.numel() for p in det.parameters()) / 1e6
    assert float(params.group(1)) == pytest.approx(n_params, rel=0.01)
    # RetinaNet's head at 800x800 dwarfs a 14M-MAC backbone: tens of GFLOPs, not 0 and not ResNet-50's 200+
    assert 10 < float(flops.group(1)) < 150


@pytest.mark.slow
def test_mmdet_train_py_runs_the_efficient_backbone_recipe(coco_digits, tmp_path):
    """The second RetinaNet recipe (mmdet's EfficientNet-B3 one) at demo scale, one epoch under mmdet's
    train.py on a CPU: SyncBN in the backbone is reverted to BN by mmengine (not distributed) and the
    backbone keeps its activations; BN statistics move (norm_eval=False); the head is RetinaSepBNHead."""
    cfg = ROOT / 'configs/retinanet/retinanet_cream-demo_fpn_crop128_digits.py'
    work = tmp_path / 'w'
    r = _run('train.py', str(cfg), '--work-dir', str(work), '--cfg-options', *_data_options(coco_digits),
             'train_cfg.max_epochs=1', 'train_cfg.val_interval=1', 'default_hooks.checkpoint.interval=1',
             'default_hooks.logger.interval=1', cwd=tmp_path)
    log = r.stdout + r.stderr
    assert 'Epoch(train) [1][5/5]' in log
    assert 'reverted to BN without their activation' in log          # CreamBackbone restored them
    losses = [float(x) for x in re.findall(r' loss: ([-0-9.naif]+)', log)]
    assert len(losses) == 5 and all(x == x and abs(x) < 1e4 for x in losses), losses
    sd = torch.load(work / 'epoch_1.pth', map_location='cpu', weights_only=False)['state_dict']
    # one set of convs for all levels, a BN per level (RetinaSepBNHead), BN after the FPN's convs
    assert 'bbox_head.cls_convs.0.0.conv.weight' in sd and 'bbox_head.cls_convs.4.0.bn.weight' in sd
    assert 'neck.fpn_convs.0.bn.weight' in sd
    # the backbone's BN statistics were updated in training (they start at 0 / 1)
    assert sd['backbone.net.blocks.2.0.bn1.running_mean'].abs().sum() > 0
