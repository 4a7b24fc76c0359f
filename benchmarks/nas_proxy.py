#!/usr/bin/env python
"""A NAS proxy task with signal: is its stand-alone ranking of archs stable across seeds?

Stage 1 of the strategy comparison (the issue "Show what Cream claims on an embedded task with
signal"): the cluttered-shapes task (``cream_det.data.shapes``, generated, never downloaded) and
its ground truth. Archs are drawn inside one MACs range of the search supernet's depths, each is
trained from scratch with every seed, and the script prints

    kendall tau seed-vs-seed: ...      (stability of the ground truth; the bar is >= 0.5)
    kendall tau macs-vs-top1: ...      (how much of the ranking is just "bigger is better")

and writes ``groundtruth.json`` / ``groundtruth.md`` to ``--out``. The supernet trainings of
Cream, SPOS, DNA and MixPath on the same task are the next stage (not in this script yet).

    python benchmarks/nas_proxy.py groundtruth                 # 16 archs x 2 seeds
    python benchmarks/nas_proxy.py groundtruth --quick         # seconds: checks the harness
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from cream_det.data.imagenet import CreamImageFolder  # noqa: E402
from cream_det.data.shapes import make_imagenet_shapes  # noqa: E402
from cream_det.search.evaluate import accuracy  # noqa: E402
from cream_det.search.ranking import kendall_tau  # noqa: E402
from cream_det.search.ranking_tool import train_standalone  # noqa: E402
from cream_det.space import CREAM_SPACE, ArchSampler  # noqa: E402

FULL = dict(size=32, num_train=5000, num_val=1000, archs=16, seeds=2, epochs=8, depths=2, batch=64, lr=0.1)
QUICK = dict(size=32, num_train=200, num_val=100, archs=4, seeds=2, epochs=1, depths=1, batch=50, lr=0.1)


def load(root: Path, split: str, size: int, batch: int, order_seed: int | None = None) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The split through the real ImageNet-folder loader (no augmentation), materialised as batches."""
    ds = CreamImageFolder(str(root), split=split, input_size=size, is_training=False, crop_pct=1.0)
    items = [ds[i] for i in range(len(ds))]
    x = torch.stack([d['inputs'] for d in items])
    y = torch.as_tensor([int(d['label']) for d in items])
    if order_seed is not None:
        perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(order_seed))
        x, y = x[perm], y[perm]
    return [(x[i:i + batch], y[i:i + batch]) for i in range(0, len(y), batch)]


def groundtruth(args: argparse.Namespace) -> dict:
    p = {**(QUICK if args.quick else FULL), **{k: v for k, v in vars(args).items() if v is not None and k in FULL}}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = Path(args.data) if args.data else out / f"shapes_{p['size']}px_{p['num_train']}"
    if not (data / 'train').is_dir():
        t = time.time()
        make_imagenet_shapes(data, size=p['size'], num_train=p['num_train'], num_val=p['num_val'], seed=0)
        print(f'data: {p["num_train"]} train / {p["num_val"]} val images generated in {time.time() - t:.1f} s -> {data}')
    depths = (p['depths'],) * 5
    sampler = ArchSampler(CREAM_SPACE, p['size'], 10, depths=depths, seed=123)
    lo, hi = np.percentile([sampler.sample().macs for _ in range(400)], [25, 75])    # the middle half of the space
    archs = ArchSampler(CREAM_SPACE, p['size'], 10, depths=depths, macs_range=(lo, hi), seed=7)
    archs = [archs.sample() for _ in range(p['archs'])]
    val = load(data, 'val', p['size'], 256)
    acc = np.zeros((p['seeds'], len(archs)))
    t0 = time.time()
    for s in range(p['seeds']):
        train = load(data, 'train', p['size'], p['batch'], order_seed=s)
        for i, arch in enumerate(archs):
            net = train_standalone(arch, train, p['epochs'], lr=p['lr'], seed=s)
            acc[s, i] = accuracy(net, val)
            print(f'seed {s} arch {i + 1}/{len(archs)} {arch} {arch.macs / 1e6:.2f}M: top-1 {acc[s, i]:.2f} %'
                  f'  ({time.time() - t0:.0f} s)', flush=True)
    macs = np.array([a.macs for a in archs], dtype=float)
    taus = [kendall_tau(acc[a], acc[b]) for a in range(p['seeds']) for b in range(a + 1, p['seeds'])]
    res = {'params': p, 'macs_range': [float(lo), float(hi)], 'archs': [a.to_dict() for a in archs],
           'macs': macs.tolist(), 'top1': acc.tolist(), 'tau_seed_vs_seed': taus,
           'tau_macs_vs_top1': float(kendall_tau(macs, acc.mean(0))), 'seconds': round(time.time() - t0, 1)}
    (out / 'groundtruth.json').write_text(json.dumps(res, indent=2) + '\n')
    spread = acc.mean(0)
    (out / 'groundtruth.md').write_text(
        f"| archs | seeds | epochs | MACs range | top-1 mean (min-max over archs) | tau seed vs seed | tau MACs vs top-1 |\n"
        f"|---|---|---|---|---|---|---|\n| {len(archs)} | {p['seeds']} | {p['epochs']} | {lo / 1e6:.2f}-{hi / 1e6:.2f}M | "
        f"{spread.mean():.1f} ({spread.min():.1f}-{spread.max():.1f}) | {', '.join(f'{t:.3f}' for t in taus)} | "
        f"{res['tau_macs_vs_top1']:.3f} |\n")
    print(f"kendall tau seed-vs-seed: {', '.join(f'{t:.3f}' for t in taus)}")
    print(f"kendall tau macs-vs-top1: {res['tau_macs_vs_top1']:.3f}")
    print(f"top-1 over archs: mean {spread.mean():.2f} %, min {spread.min():.2f} %, max {spread.max():.2f} %")
    print(f"wall time: {res['seconds']:.0f} s")
    return res


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest='stage', required=True)
    g = sub.add_parser('groundtruth', help='stand-alone accuracy of archs with several seeds')
    g.add_argument('--quick', action='store_true', help='tiny setting that checks the harness in seconds')
    g.add_argument('--out', default='work_dirs/nas_proxy')
    g.add_argument('--data', help='existing shapes set (default: generated under --out)')
    for key in FULL:
        g.add_argument(f"--{key.replace('_', '-')}", dest=key, type=type(FULL[key]))
    args = ap.parse_args(argv)
    groundtruth(args)


if __name__ == '__main__':
    main()
