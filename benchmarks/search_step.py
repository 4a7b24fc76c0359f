#!/usr/bin/env python
"""Time of one search iteration: Cream (batched teacher selection), Cream (per-entry selection, the
authors' loop) and SPOS, at equal batch, on iterations without a meta update.

    python benchmarks/search_step.py [--res 128] [--batch 16] [--iters 10] [--device cpu|cuda]

The paper's 0-600M supernet (4 layers per stage), a full board of 10 paths. Prints seconds per
step for each and the ratios the issue asks for (target: Cream <= 1.5x SPOS).
"""
import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from mmengine.optim import OptimWrapper  # noqa: E402

import cream_det  # noqa: E402,F401
from cream_det.models.supernet import Supernet  # noqa: E402
from cream_det.search import matching  # noqa: E402
from cream_det.search.strategies import STRATEGIES, StepContext  # noqa: E402
from cream_det.space import CREAM_SPACE  # noqa: E402


def make(kind, sn, board_from=None, **kw):
    st = STRATEGIES[kind](sn, macs_range=(0, 600e6), seed=0, **kw)
    if board_from is not None:
        st.board = board_from
    return st


def bench(name, strategy, sn, x, y, iters, device):
    opt = OptimWrapper(torch.optim.SGD(sn.parameters(), lr=0.01, momentum=0.9))
    ctx = lambda i: StepContext(sn, lambda a, c: sn(a, c), opt, x, y, step=10_000 + 2 * i + 1, epoch=99)  # noqa: E731
    for i in range(2):                                       # warm-up
        strategy.train_step(ctx(i))
    if device == 'cuda':
        torch.cuda.synchronize()
    t = time.perf_counter()
    for i in range(iters):
        strategy.train_step(ctx(i))
    if device == 'cuda':
        torch.cuda.synchronize()
    dt = (time.perf_counter() - t) / iters
    print(f'{name}: {dt * 1000:.1f} ms/step')
    return dt


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument('--res', type=int, default=128)
    p.add_argument('--batch', type=int, default=16)
    p.add_argument('--iters', type=int, default=10)
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    args = p.parse_args()
    torch.manual_seed(0)
    dev = torch.device(args.device)
    sn = Supernet(CREAM_SPACE, (4,) * 5, 1000, resolution=args.res).to(dev).train()
    x = torch.randn(args.batch, 3, args.res, args.res, device=dev)
    y = torch.randint(0, 1000, (args.batch,), device=dev)

    cream = make('cream', sn, meta_interval=10 ** 9)         # no meta update in the timed steps
    while len(cream.board) < cream.board.size:              # a full board of 10 distinct paths
        code = cream.sample(dev)
        cream.board.consider(code, 50.0 + len(cream.board), 1, x[:4].cpu(), torch.softmax(torch.randn(4, 1000), 1), 0)
    naive = make('cream', sn, board_from=cream.board, meta_interval=10 ** 9)
    orig = matching.select_teacher
    print(f'device: {args.device}, resolution {args.res}, batch {args.batch}, supernet depths (4,)*5, board 10')
    t_spos = bench('spos step', make('spos', sn), sn, x, y, args.iters, args.device)
    t_cream = bench('cream step (batched teacher selection)', cream, sn, x, y, args.iters, args.device)
    import cream_det.search.strategies as S
    S.select_teacher = matching.select_teacher_naive
    try:
        t_naive = bench('cream step (per-entry teacher selection)', naive, sn, x, y, args.iters, args.device)
    finally:
        S.select_teacher = orig
    print(f'ratio cream/spos: {t_cream / t_spos:.2f}')
    print(f'ratio cream-naive/cream: {t_naive / t_cream:.2f}')


if __name__ == '__main__':
    main()
