#!/usr/bin/env python
"""Time of one search iteration: Cream (batched teacher selection), Cream (per-entry selection, the
authors' loop) and SPOS, at equal batch, on iterations without a meta update.

    python benchmarks/search_step.py [--res 128] [--batch 16 64 128] [--iters 5] [--device cpu|cuda]

The paper's 0-600M supernet (4 layers per stage), a full board of 10 paths with 4 images each.
Prints milliseconds per step for each and the ratios the issue asks for (target: Cream <= 1.5x
SPOS), per batch size: a Cream step adds a gradient-free teacher forward of the batch and one
gradient-free student forward of the board's 40 stored images to the SPOS step, so the ratio
falls with the batch (the paper trains with 128 images per GPU).
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from mmengine.optim import OptimWrapper  # noqa: E402

import cream_det  # noqa: E402,F401
from cream_det.models.supernet import Supernet  # noqa: E402
from cream_det.search.strategies import STRATEGIES, StepContext  # noqa: E402
from cream_det.space import CREAM_SPACE  # noqa: E402


def make(kind, sn, board_from=None, **kw):
    st = STRATEGIES[kind](sn, macs_range=(0, 600e6), seed=0, **kw)
    if board_from is not None:
        st.board = board_from
    return st


def _step_timer(strategy, sn, x, y, device):
    """One timed training step of ``strategy``."""
    opt = OptimWrapper(torch.optim.SGD(sn.parameters(), lr=0.01, momentum=0.9))
    calls = iter(range(10 ** 9))

    def step() -> float:
        ctx = StepContext(sn, lambda a, c: sn(a, c), opt, x, y, step=10_000 + 2 * next(calls) + 1, epoch=99)
        if device == 'cuda':
            torch.cuda.synchronize()
        t = time.perf_counter()
        strategy.train_step(ctx)
        if device == 'cuda':
            torch.cuda.synchronize()
        return time.perf_counter() - t
    return step


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument('--res', type=int, default=128)
    p.add_argument('--batch', type=int, nargs='+', default=[16, 64, 128])
    p.add_argument('--iters', type=int, default=5)
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    args = p.parse_args()
    torch.manual_seed(0)
    dev = torch.device(args.device)
    sn = Supernet(CREAM_SPACE, (4,) * 5, 1000, resolution=args.res).to(dev).train()
    print(f'device: {args.device}, resolution {args.res}, supernet depths (4,)*5, board 10 x 4 images; '
          f'variants interleaved step by step, median of {args.iters} steps after 1 warm-up round')
    summary = []
    for batch in args.batch:
        x = torch.randn(batch, 3, args.res, args.res, device=dev)
        y = torch.randint(0, 1000, (batch,), device=dev)
        cream = make('cream', sn, meta_interval=10 ** 9, selection='batched')   # no meta update in the timed steps
        while len(cream.board) < cream.board.size:              # a full board of 10 distinct paths
            code = cream.sample(dev)
            cream.board.consider(code, 50.0 + len(cream.board), 1, x[:4].cpu(),
                                 torch.softmax(torch.randn(4, 1000), 1), 0)
        naive = make('cream', sn, board_from=cream.board, meta_interval=10 ** 9, selection='per_entry')
        variants = {'spos step': _step_timer(make('spos', sn), sn, x, y, args.device),
                    'cream step (batched teacher selection)': _step_timer(cream, sn, x, y, args.device),
                    'cream step (per-entry teacher selection)': _step_timer(naive, sn, x, y, args.device)}
        times = {k: [] for k in variants}
        for r in range(args.iters + 1):          # interleaved, so a change of machine load hits all alike
            for k, step in variants.items():
                dt = step()
                if r:
                    times[k].append(dt)
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f'-- batch {batch}')
        for k, v in med.items():
            print(f'{k}: {v * 1000:.1f} ms/step')
        t_spos, t_cream, t_naive = med.values()
        summary.append((batch, t_cream / t_spos, t_naive / t_cream))
    for batch, r, rn in summary:
        print(f'batch {batch}: ratio cream/spos: {r:.2f}  ratio cream-naive/cream: {rn:.2f}')

if __name__ == '__main__':
    main()
