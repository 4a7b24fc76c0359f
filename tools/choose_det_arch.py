#!/usr/bin/env python
r"""Detection-aware choice: rank a Cream search's board paths by RetinaNet bbox mAP after a brief fine-tune.

    python tools/choose_det_arch.py work_dirs/cream_demo configs/retinanet/retinanet_cream-demo_fpn_digits.py \
        --top 3 --epochs 1 --work-dir work_dirs/det_choice
    # -> ranking.md / ranking.json (ranked table), arch.json (the winner), candidates/<rank>_<hash>/

Each board path (inside the search's MACs range; the best --top N) starts from its supernet-inherited
weights, taken from the search's latest checkpoint (last_checkpoint, or --checkpoint), and every
candidate is trained with the same schedule and seed. The work dir must be new or empty unless
--resume is given: finished candidates are then kept, an unfinished one is started over.
"""
import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cream_det.utils.cli import KeyValue, run_cli  # noqa: E402


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('search_dir', help='work dir of a Cream search (board.json, last_checkpoint, epoch_N.pth)')
    p.add_argument('config', help='detection config whose model.backbone is a CreamBackbone')
    p.add_argument('--work-dir', help='default: a new work_dirs/choose_det_arch/<timestamp>')
    p.add_argument('--checkpoint', help='supernet checkpoint to inherit from (default: the search\'s latest)')
    p.add_argument('--top', type=int, help='fine-tune only the best N board paths')
    length = p.add_mutually_exclusive_group()
    length.add_argument('--epochs', type=int, help='fine-tune epochs per path (default 1)')
    length.add_argument('--iters', type=int, help='fine-tune iterations per path instead of epochs')
    p.add_argument('--seed', type=int, help='seed of every fine-tune (default: the config\'s, else 0)')
    p.add_argument('--ignore-macs-range', action='store_true',
                   help='also fine-tune board paths outside the search\'s MACs range (and latency range)')
    p.add_argument('--resume', action='store_true', help='continue the choice in --work-dir, skipping finished paths')
    p.add_argument('--cfg-options', nargs='+', action=KeyValue, default={}, metavar='KEY=VALUE',
                   help='override detection-config entries, e.g. train_dataloader.batch_size=4')
    p.add_argument('--amp', action='store_true', help="mixed precision fine-tuning (CUDA only; AmpOptimWrapper)")
    p.add_argument('--channels-last', action='store_true', help='channels_last weights')
    p.add_argument('--cudnn-benchmark', action='store_true', help='cuDNN autotuning (env_cfg.cudnn_benchmark)')
    args = p.parse_args(argv)
    if args.amp:
        import torch
        from cream_det.errors import ConfigError
        if not torch.cuda.is_available():
            raise ConfigError('--amp needs a CUDA device; none is available here')
        args.cfg_options.update({'optim_wrapper.type': 'AmpOptimWrapper', 'optim_wrapper.loss_scale': 'dynamic'})
    if args.channels_last:
        args.cfg_options['channels_last'] = True
    if args.cudnn_benchmark:
        args.cfg_options['env_cfg.cudnn_benchmark'] = True

    from cream_det.engine.det_choice import choose_det_arch
    if args.resume and not args.work_dir:
        p.error('--resume needs the --work-dir of the choice to continue')
    work = args.work_dir or f'work_dirs/choose_det_arch/{time.strftime("%Y%m%d_%H%M%S")}'
    if args.iters is not None:
        schedule = ('iters', args.iters)
    else:
        schedule = ('epochs', 1 if args.epochs is None else args.epochs)
    return choose_det_arch(args.search_dir, args.config, work, checkpoint=args.checkpoint, top=args.top,
                           schedule=schedule, seed=args.seed, resume=args.resume, cfg_options=args.cfg_options,
                           ignore_macs_range=args.ignore_macs_range)


if __name__ == '__main__':
    run_cli(main)
