#!/usr/bin/env python
r"""How well does each strategy's supernet rank architectures? One table for several searches.

    python tools/compare_strategies.py work_dirs/cream_demo work_dirs/spos_demo \
        work_dirs/dna_demo work_dirs/mixpath_demo --num-archs 8 --epochs 3 --out-dir work_dirs/compare

Each argument is a finished search work dir (its dumped config and ``last_checkpoint``). The same
single-path archs, drawn inside the first search's MACs range, are scored by every supernet
(inherited top-1 with recalibrated BN; DNA: minus the summed block rating, relative L1 by default)
and trained stand-alone once on the first search's training data; the table gives Kendall tau per
strategy. A MixPath search is also scored on multi-path archs drawn with its own sampler (trained
stand-alone as well): a second Kendall tau, for MixPath only.
Writes ``comparison.json``, ``comparison.md`` and ``comparison.png`` to --out-dir.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cream_det.engine.cli import add_standalone_amp, check_amp  # noqa: E402
from cream_det.utils.cli import run_cli  # noqa: E402


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('work_dirs', nargs='+', help='finished search work dirs (same data, space and depths)')
    p.add_argument('--num-archs', type=int, default=8)
    p.add_argument('--epochs', type=int, default=3, help='stand-alone training epochs per arch')
    p.add_argument('--train-batches', type=int, default=None, help='cap on training batches per epoch')
    p.add_argument('--calib-batches', type=int, default=4, help='batches for BN recalibration')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--out-dir', required=True)
    add_standalone_amp(p)
    args = p.parse_args(argv)
    check_amp(args)

    from cream_det.engine.compare import compare_searches, load_search, write_comparison
    runs = [load_search(w) for w in args.work_dirs]
    res = compare_searches(runs, num_archs=args.num_archs, epochs=args.epochs, train_batches=args.train_batches,
                           calib_batches=args.calib_batches, seed=args.seed, amp=args.amp)
    print(write_comparison(res, Path(args.out_dir)))


if __name__ == '__main__':
    run_cli(main)
