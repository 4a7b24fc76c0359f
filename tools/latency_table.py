#!/usr/bin/env python
"""Measure a latency lookup table of a search space on this device (docs/latency.md).

    python tools/latency_table.py --out latency_cpu1_224.json                     # Cream space, 224 px, 1 thread
    python tools/latency_table.py --res 64 --threads 4 --batch 8 --out t.json
    python tools/latency_table.py --runtime ort --out t_ort.json                 # onnxruntime, CPU
    python tools/latency_table.py --device cuda --batch 32 --out t_gpu.json
    python tools/latency_table.py --calibrate 20 --out t.json                    # + a fitted correction
    python tools/latency_table.py --mode backbone --input-size 800 1344 --out t_det.json   # a detector's backbone

Every (layer slot, op) block of the space is the real subnet's timm block, timed on the input the
real net gives it, plus the stem, first block, last 1x1 conv and head: ``--warmup`` runs, then the
median of ``--repeats``. ``--mode backbone`` times what a detector's ``CreamBackbone`` runs instead (no
head), usually at ``--input-size H W``: 800 1344 for COCO's 1333 x 800 test size padded to 32.
``--calibrate N`` also times N sampled archs end to end and stores a linear correction of the table's
sums fitted on them (``--correction global`` or ``stage``; ``benchmarks/latency_table.py`` reports how
much each helps). Progress goes to stderr; the summary line to stdout.
"""
import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cream_det.utils.cli import run_cli  # noqa: E402


def add_target_args(p: argparse.ArgumentParser) -> None:
    """The options that say what is timed, where and how (shared with benchmarks/latency_table.py)."""
    p.add_argument('--space', default='cream_mbv3',
                   help='a registered space name, or a JSON/YAML file with a space spec (default: cream_mbv3)')
    size = p.add_mutually_exclusive_group()
    size.add_argument('--res', type=int, default=224, help='input resolution, square (default 224)')
    size.add_argument('--input-size', type=int, nargs=2, metavar=('H', 'W'),
                      help='input height and width instead of --res, e.g. 800 1344 (a 1333x800 image padded to 32)')
    p.add_argument('--mode', default='classifier', choices=('classifier', 'backbone'),
                   help='classifier: the whole net; backbone: what a detector\'s CreamBackbone runs, no head '
                        '(default classifier)')
    p.add_argument('--batch', type=int, default=1)
    p.add_argument('--threads', type=int, default=1, help='torch intra-op / onnxruntime threads (default 1)')
    p.add_argument('--device', default='cpu', choices=('cpu', 'cuda'))
    p.add_argument('--runtime', default='torch', choices=('torch', 'ort'),
                   help='torch, or onnxruntime (ort; --device cpu) on each module\'s ONNX export')
    p.add_argument('--num-classes', type=int, default=1000)
    p.add_argument('--warmup', type=int, default=10, help='untimed runs before timing a block (default 10)')
    p.add_argument('--repeats', type=int, default=30, help='timed runs of a block; the median is kept (default 30)')
    p.add_argument('--anchor', action='store_true',
                   help='time every module in turns with a fixed anchor module and keep the ratio, priced at the '
                        'anchor\'s median ms: for a machine whose speed drifts while it measures (a shared VM; '
                        'docs/latency.md). Archs checked against the table are then timed the same way')


def target_size(args: argparse.Namespace) -> 'int | tuple[int, int] | None':
    """The input size the options ask for: ``--input-size`` as ``(H, W)``, else ``--res``."""
    return tuple(args.input_size) if args.input_size else args.res


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_target_args(p)
    p.add_argument('--out', required=True, help='the table file to write (JSON)')
    p.add_argument('--calibrate', type=int, default=0, metavar='N',
                   help='time N sampled archs whole and store a linear correction fitted on them (>= 3)')
    p.add_argument('--correction', default='global', choices=('global', 'stage'),
                   help='with --calibrate: one scale for the whole sum, or one per stage (default global)')
    p.add_argument('--arch-warmup', type=int, default=5)
    p.add_argument('--arch-repeats', type=int, default=20)
    p.add_argument('--seed', type=int, default=0, help='seed of the --calibrate archs')
    p.add_argument('--progress-every', type=int, default=10, metavar='N', help='a progress line every N modules')
    args = p.parse_args(argv)

    from cream_det.models.latency import resolve_space
    from cream_det.models.latency_measure import (calibrate, measure_table, nominal_resolution, sample_archs,
                                                   stderr_progress)
    space = resolve_space(args.space)
    t = time.perf_counter()
    table = measure_table(space, target_size(args), batch=args.batch, num_classes=args.num_classes,
                          device=args.device, runtime=args.runtime, threads=args.threads, warmup=args.warmup,
                          repeats=args.repeats, progress=stderr_progress(args.progress_every), mode=args.mode,
                          anchor=args.anchor)
    if args.calibrate:
        archs = sample_archs(space, nominal_resolution(space, table.input_size), args.calibrate,
                             num_classes=args.num_classes, seed=args.seed)
        table, _ = calibrate(table, archs, kind=args.correction, progress=stderr_progress(1),
                             warmup=args.arch_warmup, repeats=args.arch_repeats)
    table.save(args.out)
    lo, hi = table.bounds()
    c = table.correction
    print(f'{args.out}: {table.describe()}; {table.device} ({table.device_name}), {table.runtime}, '
          f'{table.threads} thread(s); predicted {lo:.2f}-{hi:.2f} ms over the space'
          + (f'; {c.kind} correction x{"/".join(f"{v:.3f}" for v in c.scales)} {c.offset:+.2f} ms '
             f'from {c.fit_archs} archs' if c else '')
          + (f'; anchored at {table.anchor_ms:.3f} ms' if table.anchor_ms else '')
          + f'; measured in {time.perf_counter() - t:.1f} s')


if __name__ == '__main__':
    run_cli(main)
