#!/usr/bin/env python
"""How fast the analytic MACs model costs archs: the rate rejection sampling relies on.

    python benchmarks/flops_rate.py [--n 1000000]

Prints archs/second of the vectorised table for N random archs (any depth, Cream space, 224 px),
against costing Arch objects one by one (the naive way), and their ratio.
"""
import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from cream_det.space import CREAM_SPACE, Arch, ArchSampler, cost_table  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument('--n', type=int, default=1_000_000)
    p.add_argument('--naive-n', type=int, default=2_000)
    args = p.parse_args()
    table = cost_table(CREAM_SPACE, 224)
    codes = ArchSampler(CREAM_SPACE, 224, seed=0).sample_codes(args.n)
    table.macs_of(codes[:1000])                                   # warm-up
    t = time.perf_counter()
    macs = table.macs_of(codes)
    vec = time.perf_counter() - t
    print(f'vectorised table: {args.n:,} archs in {vec:.3f} s')
    print(f'vectorised rate: {args.n / vec:,.0f} archs/s')

    archs = [Arch.decode(c, CREAM_SPACE, 224) for c in codes[:args.naive_n]]
    t = time.perf_counter()
    naive = [a.macs for a in archs]
    dt = time.perf_counter() - t
    assert np.array_equal(np.asarray(naive), macs[:args.naive_n])
    print(f'per-Arch objects: {args.naive_n / dt:,.0f} archs/s')
    print(f'ratio vectorised/per-arch: {(args.n / vec) / (args.naive_n / dt):.1f}')


if __name__ == '__main__':
    main()
