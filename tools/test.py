#!/usr/bin/env python
"""Evaluate a checkpoint: with a config's test loop and metric (COCO bbox mAP, top-1/top-5), or a
classification checkpoint on its own (its embedded arch gives the network and eval resolution).

    python tools/test.py configs/retinanet/retinanet_cream-demo_fpn_digits.py work_dirs/x/epoch_12.pth
    python tools/test.py configs/retrain/demo_digits.py work_dirs/demo_digits/epoch_30.pth
    python tools/test.py work_dirs/demo_digits/epoch_30.pth --data-root data/demo/imagenet
    python tools/test.py cream_287.pth --data-root data/imagenet          # converted official weights
    tools/dist_test.sh CONFIG CHECKPOINT GPUS [args]

Classification prints top-1/top-5 (percent), MACs and params. A checkpoint's ``state_dict`` is
evaluated: for retrain checkpoints that is the EMA average (the trainer's ``ema/top1``); ``--raw``
evaluates the raw training weights (its ``top1``).
"""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cream_det.errors import ConfigError  # noqa: E402
from cream_det.utils.cli import KeyValue, run_cli  # noqa: E402


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('paths', nargs='+', metavar='[CONFIG] CHECKPOINT',
                   help='an mmengine config and a checkpoint, or a classification checkpoint alone (with --data-root)')
    p.add_argument('--work-dir', help='where the test log goes (default work_dirs/<config name>)')
    p.add_argument('--out', help='also write the metrics as JSON to this file')
    p.add_argument('--cfg-options', nargs='+', action=KeyValue, default={}, metavar='KEY=VALUE')
    g = p.add_argument_group('checkpoint-only (classification) mode')
    g.add_argument('--data-root', help='ImageNet-layout folder: <root>/<split>/<class>/*.JPEG')
    g.add_argument('--split', default='val', help='sub-folder to evaluate (default val)')
    g.add_argument('--arch', metavar='NAME|FILE', help='the network, for a checkpoint that embeds no arch')
    g.add_argument('--raw', action='store_true', help='evaluate the raw weights instead of the EMA ones')
    g.add_argument('--batch-size', type=int, default=64)
    g.add_argument('--num-workers', type=int, default=2)
    p.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default=None, help=argparse.SUPPRESS)
    p.add_argument('--local-rank', '--local_rank', type=int, default=0, help=argparse.SUPPRESS)
    return p


def _with_config(args: argparse.Namespace) -> dict:
    from cream_det.engine import load_config, test
    from cream_det.engine.retrain import check_checkpoint_arch, config_arch, fill_input_size, is_classification
    config, checkpoint = args.paths
    cfg = load_config(config, args.cfg_options, args.work_dir)
    cls = is_classification(cfg)
    if cls:
        fill_input_size(cfg)
        if Path(checkpoint).is_file():
            check_checkpoint_arch(cfg, checkpoint, 'evaluate it with the config of its own arch, or alone: '
                                                   'tools/test.py CHECKPOINT --data-root DIR')
    metrics = {k: float(v) for k, v in test(cfg, checkpoint).items()}
    if cls:
        arch = config_arch(cfg)
        metrics.update(macs=arch.macs, params=arch.params)
    return metrics


def _checkpoint_only(args: argparse.Namespace) -> dict:
    from cream_det.engine.checkpoint_eval import evaluate_checkpoint
    (checkpoint,) = args.paths
    if checkpoint.endswith('.py'):
        raise ConfigError(f'{checkpoint} looks like a config: pass CONFIG CHECKPOINT, or a checkpoint with --data-root')
    if not args.data_root:
        raise ConfigError('a checkpoint alone needs --data-root DIR (an ImageNet-layout folder); '
                          'or pass CONFIG CHECKPOINT')
    r = evaluate_checkpoint(checkpoint, args.data_root, arch=args.arch, split=args.split, raw=args.raw,
                            batch_size=args.batch_size, num_workers=args.num_workers)
    print(f'{checkpoint}: {r["arch"]}, {r["weights"]} weights, {r["num_images"]} images in '
          f'{Path(args.data_root) / args.split}')
    return {k: r[k] for k in ('top1', 'top5', 'macs', 'params')}


def main(argv=None) -> None:
    args = _parser().parse_args(argv)
    if len(args.paths) > 2:
        raise ConfigError(f'expected [CONFIG] CHECKPOINT, got {len(args.paths)} paths')
    metrics = _with_config(args) if len(args.paths) == 2 else _checkpoint_only(args)
    print(json.dumps(metrics, indent=2))
    if args.out:
        from cream_det.utils.io import atomic_write_text
        atomic_write_text(args.out, json.dumps(metrics, indent=2) + '\n')


if __name__ == '__main__':
    run_cli(main)
