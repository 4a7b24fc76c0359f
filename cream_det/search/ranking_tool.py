"""How well does a trained supernet rank architectures? Kendall tau between inherited and stand-alone accuracy.

For a set of archs (sampled inside the search's MACs range, or given), the inherited accuracy is
the supernet path's top-1 with recalibrated BN (:mod:`.evaluate`); the stand-alone accuracy is the
top-1 of the same arch trained from scratch for a short schedule on the same data. A supernet
that ranks paths well has tau near 1 — the measure the paper and its peers use.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..models.subnet import HEAD_INITS, build_subnet, init_head_
from .evaluate import Batch, accuracy, path_scorer
from .ranking import kendall_tau


def train_standalone(arch: Any, batches: Sequence[Batch], epochs: int, lr: float = 0.05, seed: int = 0,
                     amp: bool = False, warmup_epochs: float = 0.0, clip_grad: float = 0.0,
                     head_init: str = 'timm') -> torch.nn.Module:
    """A short from-scratch training of ``arch`` (SGD, cosine decay) on materialised batches.

    ``amp``: fp16 autocast with a dynamic loss scale (CUDA batches only), the ground truth of many
    archs being the bulk of a ranking run's time. ``warmup_epochs``: a linear ramp of the lr from
    ~0 before the cosine (a ground truth is only as good as its worst seed: without it, one seed in
    five of the proxy task's archs ended 10 points below the other at lr 0.1). ``clip_grad``: clip the
    gradient's global norm to this (0: no clipping); on the proxy task one run in five otherwise
    diverges for a few hundred steps as the warm-up reaches the peak lr and ends ~5 points low.
    ``head_init``: ``'timm'`` or ``'zero'`` (the classifier at zero: every logit 0, the loss at ln(classes)).
    timm's EfficientNet init draws it uniform in +-1/sqrt(classes), sized for 1,000 classes; at 10 the first
    logits are large and confidently wrong (the proxy task's loss sat above ln 10 for ~150 steps), and how long a
    run took to leave that plateau was most of its seed-to-seed noise (one arch: 92.9 against 97.9 % for two seeds;
    with the head at zero 97.6 and 97.9).
    """
    if head_init not in HEAD_INITS:
        raise ConfigError(f"head_init={head_init!r}: one of {', '.join(HEAD_INITS)}")
    torch.manual_seed(seed)
    device = batches[0][0].device
    if amp and device.type != 'cuda':
        raise ConfigError(f'amp=True needs CUDA batches, these are on {device}')
    net = build_subnet(arch).to(device).train()
    init_head_(net.get_classifier(), head_init)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=1e-4)
    total = max(1, epochs * len(batches))
    if warmup_epochs > 0:
        ramp = max(1, round(warmup_epochs * len(batches)))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: warmup_cosine(t, total, ramp))
    else:
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, total)
    scaler = torch.amp.GradScaler('cuda', enabled=amp)
    for _ in range(epochs):
        for x, y in batches:
            with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
                loss = F.cross_entropy(net(x), y)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if clip_grad > 0:
                scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(net.parameters(), clip_grad)
            scaler.step(opt)
            scaler.update()
            sched.step()
    return net.eval()


def standalone_top1(archs: Sequence[Any], train: Sequence[Batch], val: Sequence[Batch], epochs: int, seed: int = 0,
                    amp: bool = False) -> np.ndarray:
    """The ground truth of a ranking: each arch's top-1 on ``val`` after :func:`train_standalone`."""
    return np.asarray([accuracy(train_standalone(a, train, epochs, seed=seed, amp=amp), val) for a in archs])


def warmup_cosine(step: int, total: int, ramp: int) -> float:
    """The lr factor of step ``step`` (0-based): a linear ramp over ``ramp`` steps times a cosine to 0 at ``total``."""
    return min(1.0, (step + 1) / max(1, ramp)) * 0.5 * (1 + math.cos(math.pi * min(step, total) / total))


def rank_correlation(supernet: Any, codes: np.ndarray, train: Sequence[Batch], val: Sequence[Batch],
                     epochs: int = 2, calib_batches: int = 4, amp: bool = False) -> dict[str, Any]:
    """Kendall tau of the supernet's inherited top-1 of ``codes`` against their stand-alone top-1."""
    inherited = path_scorer(supernet, list(train[:calib_batches]), val)(codes)
    standalone = standalone_top1([supernet.arch_of(c) for c in codes], train, val, epochs, amp=amp)
    return {'kendall_tau': kendall_tau(inherited, standalone), 'inherited_top1': inherited.tolist(),
            'standalone_top1': standalone.tolist(),
            'archs': [supernet.arch_of(c).to_dict() for c in codes]}


def dna_path_scores(model: Any, codes: np.ndarray, val: Sequence[Batch]) -> np.ndarray:
    """DNA's score of each encoded path: the sum of its stages' distillation losses on ``val``, **lower is
    better** (negate it before a Kendall tau against accuracies).

    ``model`` is a ``SupernetSearch`` trained with the ``dna`` strategy (its teacher and bridges are used).
    """
    from .dna import DNA
    if not isinstance(model.strategy, DNA):
        from ..errors import ConfigError
        raise ConfigError(f'DNA scores need a model searched with the dna strategy, not {type(model.strategy).__name__}')
    return model.strategy.arch_scores(model.supernet, codes, val)
