#!/usr/bin/env python
"""Convert a checkpoint of the authors' Cream code into a cream_det checkpoint (arch embedded).

    python tools/convert_official.py 287.pth.tar checkpoints/cream_287.pth --arch cream_287

Takes the EMA weights (`state_dict_ema`) when the checkpoint has them — the published accuracies
are the EMA model's (the authors' tools/test.py evaluates only it) — else `state_dict`, and says
which; `--raw` takes `state_dict` instead.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cream_det.utils.cli import run_cli  # noqa: E402


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('src', help="the authors' checkpoint (dict with state_dict / state_dict_ema)")
    p.add_argument('dst', help='output path (.pth)')
    p.add_argument('--arch', required=True, help='published name (cream_14 … cream_604) or arch file')
    which = p.add_mutually_exclusive_group()
    which.add_argument('--raw', action='store_true',
                       help='take state_dict (the raw weights) instead of the default state_dict_ema')
    which.add_argument('--use-ema', action='store_true',
                       help='require state_dict_ema (an error if the checkpoint has none); the EMA copy is '
                            'already the default when present')
    args = p.parse_args(argv)

    from cream_det.models.checkpoint import read_checkpoint
    from cream_det.models.convert import convert_official
    from cream_det.space import as_arch
    arch = as_arch(args.arch)
    out = convert_official(args.src, args.dst, arch, use_ema=False if args.raw else (True if args.use_ema else None))
    weights = read_checkpoint(out)['meta']['weights']
    took = ('EMA weights (state_dict_ema)' if weights == 'state_dict_ema' else
            'raw weights (state_dict, --raw)' if args.raw else
            'raw weights (state_dict): the checkpoint has no state_dict_ema')
    print(f'converted {args.src} -> {out} ({arch}; {arch.macs / 1e6:.1f}M MACs, {arch.params / 1e6:.2f}M params); '
          f'took the {took}')


if __name__ == '__main__':
    run_cli(main)
