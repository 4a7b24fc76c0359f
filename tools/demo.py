#!/usr/bin/env python
"""The main job end to end on the embedded digits data (``make demo``), on CPU in minutes.

Each stage runs the same command-line tool a user runs on ImageNet/COCO:

1. ``tools/make_demo_data.py``  ImageNet-layout and COCO-format digits
2. ``tools/search.py``          Cream (or SPOS + evolution / MixPath + NSGA-II with ``--strategy spos|mixpath``)
                                -> board.json, arch.json, board.png
3. ``tools/retrain.py``         the found arch from scratch -> checkpoint with the arch embedded
4. ``tools/train.py``           RetinaNet with that backbone (weights from step 3) on the COCO digits
5. ``tools/test.py``            COCO bbox mAP of the detector; summary table -> summary.md / summary.json

A run writes into a fresh ``work_dirs/demo/<timestamp>`` (or ``--work-dir``, which must be new or
empty unless ``--resume`` is given: then finished stages are kept and unfinished ones resumed).
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cream_det.errors import ConfigError  # noqa: E402
from cream_det.utils.cli import run_cli  # noqa: E402
from cream_det.utils.io import atomic_write_text  # noqa: E402

SEARCH_CFG = {'cream': 'configs/search/cream_demo.py', 'spos': 'configs/search/spos_demo.py',
              'mixpath': 'configs/search/mixpath_demo.py'}


def _run(stage: str, args: list, log: Path) -> None:
    """Run one tool, streaming its output to the terminal and to a log; fail with the log's tail."""
    print(f'\n=== {stage}: {" ".join(str(a) for a in args)}', flush=True)
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get('PYTHONPATH', ''))
    with open(log, 'a') as f:
        p = subprocess.Popen([sys.executable, *map(str, args)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, bufsize=1)
        for line in p.stdout:
            f.write(line)
            if 'Epoch(' in line or 'error' in line.lower() or 'search done' in line or 'final arch' in line \
                    or line.startswith(('{', '  "', '}', 'imagenet:', 'coco:')):
                print('   ' + line.rstrip()[:200], flush=True)
        if p.wait() != 0:
            raise ConfigError(f'{stage} failed (exit {p.returncode}); full output in {log}')


def _logged(work: Path, key: str) -> float | None:
    vals = [json.loads(line)[key] for f in sorted(work.glob('*/vis_data/scalars.json'))
            for line in f.read_text().splitlines() if key in json.loads(line)]
    return vals[-1] if vals else None


def _last_checkpoint(work: Path) -> Path:
    from cream_det.models.checkpoint import latest_checkpoint
    found = latest_checkpoint(work)
    if found is None:
        raise ConfigError(f'{work} holds no checkpoint (no last_checkpoint marker)')
    return found


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--work-dir', help='default: a new work_dirs/demo/<timestamp>')
    p.add_argument('--strategy', choices=sorted(SEARCH_CFG), default='cream')
    p.add_argument('--resume', action='store_true', help='continue an interrupted demo in --work-dir')
    p.add_argument('--quick', action='store_true', help='shorter schedules (used by the tests)')
    p.add_argument('--amp', action='store_true', help='mixed precision in every training stage (CUDA only)')
    p.add_argument('--channels-last', action=argparse.BooleanOptionalAction, default=None,
                   help="channels_last weights on/off in every training stage (default: each config's own "
                        "choice; search and retraining use 'auto', on for a CPU)")
    p.add_argument('--cudnn-benchmark', action='store_true', help='cuDNN autotuning in every training stage')
    args = p.parse_args(argv)
    speed = [f for f, on in (('--amp', args.amp), ('--channels-last', args.channels_last is True),
                             ('--no-channels-last', args.channels_last is False),
                             ('--cudnn-benchmark', args.cudnn_benchmark)) if on]
    work = Path(args.work_dir or f'work_dirs/demo/{time.strftime("%Y%m%d_%H%M%S")}').absolute()
    if work.exists() and any(work.iterdir()) and not args.resume:
        raise ConfigError(f'{work} is not empty: pass --resume to continue that demo, or choose a new --work-dir')
    if args.resume and not work.is_dir():
        raise ConfigError(f'--resume: {work} does not exist')
    work.mkdir(parents=True, exist_ok=True)
    log = work / 'demo.log'
    times_file = work / 'times.json'            # kept across --resume so the summary covers every stage
    times: dict[str, float] = json.loads(times_file.read_text()) if times_file.is_file() else {}
    data = work / 'data'

    def stage(name: str, done: bool, fn) -> None:
        if done:
            print(f'\n=== {name}: already done in {work} (resumed)')
            return
        t = time.time()
        fn()
        times[name] = round(time.time() - t, 1)
        atomic_write_text(times_file, json.dumps(times))

    stage('data', (data / 'coco' / 'annotations').is_dir(),
          lambda: _run('data', ['tools/make_demo_data.py', data, '--force'], log))

    im = str(data / 'imagenet')
    s_work = work / 'search'
    s_opts = [f'train_dataloader.dataset.root={im}', f'search_val_dataloader.dataset.root={im}']
    if args.quick:
        s_opts += ['train_cfg.max_epochs=2', 'param_scheduler.0.end=2']
        if args.strategy == 'cream':            # the only strategy with a warm-up phase
            s_opts += ['model.strategy.warmup_epochs=1']
    stage('search', (s_work / 'arch.json').is_file(), lambda: _run(
        'search', ['tools/search.py', SEARCH_CFG[args.strategy], '--work-dir', s_work, *speed,
                   *(['--resume'] if (s_work / 'last_checkpoint').is_file() else []), '--cfg-options', *s_opts], log))

    r_work = work / 'retrain'
    r_opts = [f'{k}.dataset.root={im}' for k in ('train_dataloader', 'val_dataloader', 'test_dataloader')]
    if args.quick:
        r_opts += ['train_cfg.max_epochs=6', 'train_cfg.val_interval=6', 'default_hooks.checkpoint.interval=6']
    r_done = (r_work / 'done').is_file()

    def retrain() -> None:
        _run('retrain', ['tools/retrain.py', 'configs/retrain/demo_digits.py', '--arch', s_work / 'arch.json',
                         '--work-dir', r_work, *speed, *(['--resume'] if (r_work / 'last_checkpoint').is_file() else []),
                         '--cfg-options', *r_opts], log)
        (r_work / 'done').write_text('')
    stage('retrain', r_done, retrain)
    ckpt = _last_checkpoint(r_work)

    coco = str(data / 'coco') + '/'
    d_work = work / 'detection'
    d_opts = [f'{k}.dataset.data_root={coco}' for k in ('train_dataloader', 'val_dataloader', 'test_dataloader')]
    d_opts += [f'{k}.ann_file={coco}annotations/instances_val.json' for k in ('val_evaluator', 'test_evaluator')]
    d_opts += ['model.backbone.arch=None', f"model.backbone.init_cfg={{'type': 'Pretrained', 'checkpoint': '{ckpt}'}}"]
    if args.quick:
        d_opts += ['train_cfg.max_epochs=6', 'train_cfg.val_interval=6', 'default_hooks.checkpoint.interval=6',
                   'param_scheduler.1.milestones=[4,5]']
    d_done = (d_work / 'done').is_file()

    def detect() -> None:
        _run('detection', ['tools/train.py', 'configs/retinanet/retinanet_cream-demo_fpn_digits.py', '--work-dir',
                           d_work, *speed, *(['--resume'] if (d_work / 'last_checkpoint').is_file() else []),
                           '--cfg-options', *d_opts], log)
        (d_work / 'done').write_text('')
    stage('detection', d_done, detect)
    metrics = work / 'detection_metrics.json'
    stage('evaluation', metrics.is_file(), lambda: _run(
        'evaluation', ['tools/test.py', 'configs/retinanet/retinanet_cream-demo_fpn_digits.py',
                       _last_checkpoint(d_work), '--work-dir', work / 'detection_test', '--out', metrics,
                       '--cfg-options', *d_opts], log))

    from cream_det.space import Arch
    arch = Arch.load(s_work / 'arch.json')
    top1 = _logged(r_work, 'ema/top1') or _logged(r_work, 'top1')
    bbox_map = json.loads(metrics.read_text()).get('coco/bbox_mAP', 0.0)
    summary = {'strategy': args.strategy, 'arch': str(arch), 'arch_file': str(s_work / 'arch.json'),
               'macs': arch.macs, 'params': arch.params, 'top1': top1, 'bbox_mAP': bbox_map,
               'retrain_checkpoint': str(ckpt), 'seconds_per_stage': times}
    table = '\n'.join([
        '| stage | result |', '|---|---|',
        f'| search ({args.strategy}) | `{str(arch).replace("|", "/")}` |',
        f'| MACs / params | {arch.macs / 1e6:.1f} M / {arch.params / 1e6:.2f} M |',
        f'| retrain top-1 (digits val) | {top1 if top1 is None else f"{top1:.1f} %"} |',
        f'| RetinaNet bbox mAP (COCO digits val) | {bbox_map:.3f} |',
        f'| time per stage (s) | {", ".join(f"{k} {v}" for k, v in times.items())} |'])
    atomic_write_text(work / 'summary.json', json.dumps(summary, indent=2) + '\n')
    atomic_write_text(work / 'summary.md', table + '\n')
    print('\n' + table + f'\n\nwritten to {work}/summary.md and summary.json')


if __name__ == '__main__':
    run_cli(main)
