#!/usr/bin/env python
"""Convert a checkpoint of the authors' Cream code into a cream_det checkpoint (arch embedded).

    python tools/convert_official.py 287.pth.tar checkpoints/cream_287.pth --arch cream_287
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
    p.add_argument('--use-ema', action='store_true', help='take state_dict_ema instead of state_dict')
    args = p.parse_args(argv)

    from cream_det.models.convert import convert_official
    from cream_det.space import as_arch
    arch = as_arch(args.arch)
    out = convert_official(args.src, args.dst, arch, use_ema=args.use_ema)
    print(f'converted {args.src} -> {out} ({arch}; {arch.macs / 1e6:.1f}M MACs, {arch.params / 1e6:.2f}M params, '
          f'{"EMA" if args.use_ema else "raw"} weights)')


if __name__ == '__main__':
    run_cli(main)
