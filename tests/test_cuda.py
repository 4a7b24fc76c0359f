"""The GPU path, run: search (Cream, SPOS), retraining and RetinaNet for a few steps on CUDA, in fp32
and under AMP, and a one-GPU ``tools/dist_train.sh`` on NCCL.

Every test here is marked ``cuda`` and skipped (with the reason) where torch sees no GPU;
``benchmarks/gpu.sh`` runs them on a GPU machine. They check that the path executes and stays
sane (weights on the GPU, fp16 forwards under AMP, finite losses, checkpoints written), not speed.
"""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import cream_det  # noqa: F401
from cream_det.engine import load_config, train
from cream_det.engine.run import apply_speed_options

pytestmark = pytest.mark.cuda

ROOT = Path(__file__).resolve().parents[1]
TOY = ROOT / 'tests/scripts/search_toy_cfg.py'
RETRAIN = ROOT / 'configs/retrain/demo_digits.py'
RETINANET = ROOT / 'configs/retinanet/retinanet_cream-demo_fpn_digits.py'
STRATEGIES = {'cream': {}, 'spos': {'model.strategy': {'_delete_': True, 'type': 'spos'}}}
MODES = {'fp32': {}, 'amp': {'amp': True}, 'amp+channels_last': {'amp': True, 'channels_last': True}}


def _scalars(work: Path) -> list[dict]:
    return [json.loads(line) for f in sorted(work.glob('*/vis_data/scalars.json'))
            for line in f.read_text().splitlines()]


def _losses(work: Path, key: str = 'loss') -> list[float]:
    values = [d[key] for d in _scalars(work) if key in d]
    assert values, f'{key} was never logged in {work}'
    return values


def _speed(cfg, mode: dict):
    # cuDNN autotuning with channels_last only: it costs time on every new input shape
    cl = mode.get('channels_last', False)
    torch.backends.cudnn.benchmark = False          # mmengine only ever switches it on: start each run clean
    apply_speed_options(cfg, channels_last=cl, cudnn_benchmark=cl)
    return cfg


def _check_runner(runner, mode: dict) -> None:
    from mmengine.optim import AmpOptimWrapper
    params = list(runner.model.parameters())
    assert all(p.is_cuda for p in params)
    assert isinstance(runner.optim_wrapper, AmpOptimWrapper) == bool(mode.get('amp'))
    if mode.get('channels_last'):
        convs = [p for p in params if p.dim() == 4 and p.shape[1] > 1 and p.shape[-1] > 1]
        assert convs and all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)
    assert torch.backends.cudnn.benchmark == bool(mode.get('channels_last'))


@pytest.mark.parametrize('mode', list(MODES))
@pytest.mark.parametrize('strategy', list(STRATEGIES))
def test_search_steps_on_cuda(strategy, mode, tmp_path):
    """Two epochs of the toy search (Cream: warm-up, board, meta updates) and the final pick, on the GPU."""
    from cream_det.engine.search_run import run_search
    m = MODES[mode]
    cfg = _speed(load_config(TOY, {**STRATEGIES[strategy], 'train_cfg.max_epochs': 2}, str(tmp_path)), m)
    runner, summary = run_search(cfg, amp=m.get('amp', False))
    _check_runner(runner, m)
    assert all(math.isfinite(v) for v in _losses(tmp_path))
    if strategy == 'cream':
        assert all(math.isfinite(v) for v in _losses(tmp_path, 'meta_val_loss'))
        assert summary['board']
    assert (tmp_path / 'arch.json').is_file()
    # the student's forward runs under the optim wrapper's autocast: fp16 logits exactly when --amp
    model = runner.model.module if hasattr(runner.model, 'module') else runner.model
    seen = []
    handle = model.supernet.classifier.register_forward_hook(lambda mod, i, out: seen.append(out.dtype))
    batch = next(iter(runner.train_dataloader))
    model.train_step(batch, runner.optim_wrapper)
    handle.remove()
    assert seen and seen[0] == (torch.float16 if m.get('amp') else torch.float32)


@pytest.mark.parametrize('mode', list(MODES))
def test_retraining_on_cuda(mode, imagenet_digits, tmp_path):
    m = MODES[mode]
    opts = {f'{k}_dataloader.dataset.root': str(imagenet_digits) for k in ('train', 'val', 'test')}
    opts.update({'train_cfg.max_epochs': 1, 'train_cfg.val_interval': 1, 'default_hooks.checkpoint.interval': 1})
    runner = train(_speed(load_config(RETRAIN, opts, str(tmp_path)), m), amp=m.get('amp', False))
    _check_runner(runner, m)
    assert runner.iter > 0 and (tmp_path / 'epoch_1.pth').is_file()
    assert all(math.isfinite(v) for v in _losses(tmp_path))


def _det_options(coco: Path, **extra) -> dict:
    root = str(coco) + '/'
    opts = {'data_root': root, **{f'{k}_dataloader.dataset.data_root': root for k in ('train', 'val', 'test')},
            'val_evaluator.ann_file': root + 'annotations/instances_val.json',
            'test_evaluator.ann_file': root + 'annotations/instances_val.json',
            'train_cfg.max_epochs': 1, 'train_cfg.val_interval': 1, 'default_hooks.checkpoint.interval': 1}
    opts.update(extra)
    return opts


@pytest.mark.parametrize('mode', list(MODES))
def test_retinanet_on_cuda(mode, coco_digits, tmp_path):
    m = MODES[mode]
    runner = train(_speed(load_config(RETINANET, _det_options(coco_digits), str(tmp_path)), m), amp=m.get('amp', False))
    _check_runner(runner, m)
    assert (tmp_path / 'epoch_1.pth').is_file()
    assert all(math.isfinite(v) for v in _losses(tmp_path))


@pytest.mark.parametrize('amp', [False, True], ids=['fp32', 'amp'])
def test_dist_train_sh_one_gpu_nccl(amp, coco_digits, tmp_path):
    """``tools/dist_train.sh CONFIG 1``: torchrun, one process on the GPU, NCCL process group."""
    env = dict(os.environ, PORT='29631', PYTHON=sys.executable, PYTHONPATH=str(ROOT))
    r = subprocess.run([str(ROOT / 'tools/dist_train.sh'), str(RETINANET), '1', '--work-dir', str(tmp_path / 'w'),
                        *(['--amp'] if amp else []), '--cfg-options',
                        *[f'{k}={v!r}' for k, v in _det_options(coco_digits).items()]],
                       capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    assert (tmp_path / 'w' / 'epoch_1.pth').is_file()
    # mmengine's runtime-environment log: the process group torchrun + adjust_launch set up
    assert "dist_cfg: {'backend': 'nccl'}" in out and 'Distributed training: True' in out, out[-3000:]
    assert ('AmpOptimWrapper' in out) == amp


@pytest.mark.parametrize('amp', [False, True], ids=['fp32', 'amp'])
def test_ranking_ground_truth_and_inherited_scores_on_cuda(amp):
    """What tools/rank_archs.py and compare_strategies.py run: stand-alone trainings and inherited scores."""
    from cream_det.models.supernet import Supernet
    from cream_det.search.evaluate import accuracy, path_scorer
    from cream_det.search.ranking_tool import train_standalone
    from cream_det.space import ArchSampler, get_space
    torch.manual_seed(0)
    space = get_space(load_config(TOY).model.space)
    sn = Supernet(space, (2, 2), num_classes=5, resolution=32).cuda()
    codes = ArchSampler(space, 32, 5, depths=(2, 2), seed=0).sample_codes(2)
    batches = [(torch.randn(8, 3, 32, 32, device='cuda'), torch.randint(0, 5, (8,), device='cuda')) for _ in range(3)]
    net = train_standalone(sn.arch_of(codes[0]), batches, 2, amp=amp)
    assert next(net.parameters()).is_cuda and 0.0 <= accuracy(net, batches) <= 100.0
    scores = path_scorer(sn, batches[:1], batches)(codes)
    assert scores.shape == (2,) and all(0.0 <= s <= 100.0 for s in scores)
