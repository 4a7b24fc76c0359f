#!/usr/bin/env python
"""Training throughput of a retrained Cream net against timm's MobileNetV3-Large at the same size.

    python benchmarks/retrain_throughput.py [--batch 16] [--size 224] [--iters 3] [--rounds 5] [--threads 1]
                                            [--device cpu|cuda] [--amp] [--channels-last]

One training step = forward, cross-entropy, backward and an SGD step (momentum 0.9), in train
mode with dropout 0.2 for both nets. After a warm-up, the two nets are timed in alternating rounds
(so load from other processes hits both alike) and each one's median images/second is printed,
then their ratio. cream_287 (287M MACs) and mobilenetv3_large_100 (~217M MACs) are both
MobileNetV3-family timm models, so the ratio shows what the searched layout costs in training time.
``--amp`` (CUDA only) runs the forward under fp16 autocast with a dynamic loss scale (torch's
``GradScaler``, what mmengine's ``AmpOptimWrapper`` uses); names then carry an ``_amp`` suffix.
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import timm  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

from cream_det.models import build_subnet  # noqa: E402

BASELINE = 'mobilenetv3_large_100'


def make_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, amp: bool = False):
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    scaler = torch.amp.GradScaler('cuda', enabled=amp)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast(x.device.type, dtype=torch.float16, enabled=amp):
            loss = loss_fn(model(x), y)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    return step


def images_per_second(step, batch: int, iters: int, sync) -> float:
    sync()
    t = time.perf_counter()
    for _ in range(iters):
        step()
    sync()
    return batch * iters / (time.perf_counter() - t)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--batch', type=int, default=16)
    p.add_argument('--size', type=int, default=224)
    p.add_argument('--iters', type=int, default=3, help='steps per timed round')
    p.add_argument('--rounds', type=int, default=5, help='alternating timed rounds per net (median reported)')
    p.add_argument('--warmup', type=int, default=2, help='untimed steps per net first')
    p.add_argument('--threads', type=int, default=1,
                   help='torch CPU threads (0: torch default); 1 by default because on a shared machine '
                        'OpenMP threads spinning against other processes distort the timings many-fold')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--channels-last', action='store_true')
    p.add_argument('--amp', action='store_true', help='fp16 autocast + dynamic loss scaling (CUDA only)')
    args = p.parse_args()
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        p.error('--device cuda: no CUDA device is available here')
    if args.amp and not args.device.startswith('cuda'):
        p.error('--amp needs --device cuda')
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == 'cuda' else (lambda: None)
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    nets = {'cream_287': build_subnet('cream_287', drop_rate=0.2),
            BASELINE: timm.create_model(BASELINE, drop_rate=0.2)}
    x = torch.randn(args.batch, 3, args.size, args.size, device=dev).contiguous(memory_format=fmt)
    y = torch.randint(0, 1000, (args.batch,), device=dev)
    steps = {}
    for name, net in nets.items():
        net.to(dev, memory_format=fmt).train()
        steps[name] = make_step(net, x, y, args.amp)
        for _ in range(args.warmup):
            steps[name]()
    rates: dict[str, list[float]] = {name: [] for name in nets}
    for _ in range(args.rounds):
        for name, step in steps.items():
            rates[name].append(images_per_second(step, args.batch, args.iters, sync))
    tag = ('_amp' if args.amp else '') + ('_channels_last' if args.channels_last else '')
    print(f'setup: batch {args.batch}, {args.size} px, {args.device}{" AMP" if args.amp else ""}'
          f'{" channels_last" if args.channels_last else ""}, {torch.get_num_threads()} threads, '
          f'{args.rounds} rounds x {args.iters} steps')
    med = {name: statistics.median(r) for name, r in rates.items()}
    for name, v in med.items():
        n_params = sum(p.numel() for p in nets[name].parameters())
        print(f'{name}{tag}: {v:.2f} images/s')
        print(f'{name} size: {n_params:,} params')
    print(f'ratio cream_287/{BASELINE}{tag}: {med["cream_287"] / med[BASELINE]:.2f}')


if __name__ == '__main__':
    main()
