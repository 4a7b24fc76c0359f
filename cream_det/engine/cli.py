"""The arguments every training tool shares, parsed into a loaded config (the engine's half of the CLI;
the plumbing that prints user mistakes is :mod:`cream_det.utils.cli`)."""
from __future__ import annotations

import argparse
from typing import Any

from ..utils.cli import KeyValue
from .run import apply_speed_options, load_config


def train_parser(description: str) -> argparse.ArgumentParser:
    """The arguments every training tool shares (mmdet's ``tools/train.py`` conventions)."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config', help='mmengine config file')
    p.add_argument('--work-dir', help='where logs, checkpoints and outputs go (default work_dirs/<config name>)')
    p.add_argument('--resume', nargs='?', const=True, default=False, metavar='CKPT',
                   help='resume from CKPT, or from the latest checkpoint in the work dir when no path is given')
    p.add_argument('--resume-fallback', action='store_true',
                   help='with --resume: if that checkpoint is truncated or corrupt, resume from the newest intact '
                        'one in the work dir instead of stopping (config key resume_fallback=True)')
    p.add_argument('--amp', action='store_true',
                   help="mixed precision (CUDA only): mmengine's AmpOptimWrapper, fp16 autocast, dynamic loss scale")
    p.add_argument('--channels-last', action=argparse.BooleanOptionalAction, default=None,
                   help="channels_last weights (and so activations) on or off: config key channels_last; "
                        "without either flag the config decides (search and retrain configs: 'auto', on for CPU)")
    p.add_argument('--cudnn-benchmark', action='store_true',
                   help="let cuDNN pick the fastest kernels per input shape: env_cfg.cudnn_benchmark=True")
    p.add_argument('--cfg-options', nargs='+', action=KeyValue, default={}, metavar='KEY=VALUE',
                   help='override config entries, e.g. train_cfg.max_epochs=1')
    p.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default=None,
                   help='accepted for mmdet compatibility; the launcher is chosen from the environment')
    p.add_argument('--local-rank', '--local_rank', type=int, default=0, help=argparse.SUPPRESS)
    return p


def parse_and_load(p: argparse.ArgumentParser, argv: Any = None) -> tuple[argparse.Namespace, Any]:
    args = p.parse_args(argv)
    if getattr(args, 'resume_fallback', False) and not args.resume:
        p.error('--resume-fallback only applies with --resume')
    cfg = load_config(args.config, args.cfg_options, args.work_dir)
    if getattr(args, 'resume_fallback', False):
        cfg.resume_fallback = True
    apply_speed_options(cfg, channels_last=getattr(args, 'channels_last', None),
                        cudnn_benchmark=getattr(args, 'cudnn_benchmark', False))
    return args, cfg



def add_standalone_amp(p: argparse.ArgumentParser) -> None:
    """``--amp`` of the tools that train archs stand-alone for a ranking (checked by :func:`check_amp`)."""
    p.add_argument('--amp', action='store_true',
                   help='stand-alone trainings in mixed precision (fp16 autocast, dynamic loss scale; CUDA only)')


def check_amp(args: argparse.Namespace) -> None:
    """Refuse ``--amp`` up front where there is no CUDA device, before any data or model is built."""
    if getattr(args, 'amp', False):
        import torch

        from ..errors import ConfigError
        if not torch.cuda.is_available():
            raise ConfigError('--amp needs a CUDA device; none is available here')


__all__ = ['add_standalone_amp', 'check_amp', 'parse_and_load', 'train_parser']
