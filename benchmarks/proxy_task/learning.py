"""``learnability``: how fast a single-path supernet learns the task, by how its paths are drawn."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from cream_det.space import CREAM_SPACE, ArchSampler
from cream_det.utils.io import atomic_write_text

from .data import load, make_data
from .params import classes, settings


def learnability(args: argparse.Namespace) -> dict:
    """How fast a single-path supernet learns the task, by how paths are drawn (the bare step, no engine).

    ``fixed``: one path throughout (what a stand-alone net sees); ``same_op``: every layer runs the same
    op, drawn per step from all ops (only as many paths as ops); ``per_layer``: each layer draws its own op
    (SPOS's uniform sampling). Prints the running training top-1 every ``--every`` steps."""
    import torch.nn.functional as F
    from cream_det.models.supernet import Supernet
    p = settings(args)
    out = Path(args.out)
    _, data, _ = make_data(p, out, args.data)
    torch.set_num_threads(1)
    train = load(data, 'train', p['size'], p['batch'], order_seed=0)
    depths = (p['depths'],) * len(CREAM_SPACE.stages)
    template = ArchSampler(CREAM_SPACE, p['size'], classes(p), depths=depths, seed=0).sample().encode()
    n_ops = len(CREAM_SPACE.ops)
    res = {}
    for mode in args.modes:
        torch.manual_seed(0)
        rng = np.random.default_rng(0)
        sn = Supernet(CREAM_SPACE, depths, classes(p), resolution=p['size'], init=args.init,
                      head_init=p['search_head']).train()
        opt = torch.optim.SGD(sn.parameters(), lr=p['search_lr'], momentum=0.9, nesterov=True, weight_decay=1e-4)
        fixed = tuple(int(v) for v in template)
        hits = seen = 0
        curve = []
        for step in range(args.steps):
            x, y = train[step % len(train)]
            if mode == 'fixed':
                code = fixed
            elif mode == 'same_op':
                op = int(rng.integers(n_ops))
                code = tuple(op if v >= 0 else -1 for v in template)
            else:
                code = tuple(int(rng.integers(n_ops)) if v >= 0 else -1 for v in template)
            logits = sn(x, code)
            loss = F.cross_entropy(logits, y, label_smoothing=0.1)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            hits, seen = hits + int((logits.argmax(1) == y).sum()), seen + len(y)
            if (step + 1) % args.every == 0:
                curve.append(round(100.0 * hits / seen, 1))
                print(f'{mode} step {step + 1}: training top-1 of the last {args.every} steps {curve[-1]:.1f} %',
                      flush=True)
                hits = seen = 0
        res[mode] = curve
    atomic_write_text(out / 'learnability.json', json.dumps({'params': p, 'init': args.init, 'every': args.every,
                                                              'curves': res}, indent=2) + '\n')
    return res
