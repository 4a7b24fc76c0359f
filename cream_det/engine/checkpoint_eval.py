"""Evaluate a classification checkpoint with nothing but the file and an ImageNet-layout folder.

Why: a retrain checkpoint embeds its arch (``meta.cream_arch``: ops, resolution, class count),
so a config is not needed to rebuild the network or its eval pipeline. The pieces are the ones
the Runner uses in training — ``CreamClassifier``, ``CreamImageFolder``'s eval transform (resize to
``resolution / crop_pct``, bicubic, center crop, ImageNet mean/std), mmengine's dataloader builder
and ``Evaluator`` with ``CreamAccuracy`` — so the numbers match the ones the trainer logged.

Which weights: a checkpoint's ``state_dict``. For checkpoints written with mmengine's ``EMAHook``
(all retrain configs) that *is* the EMA average — the hook stores the raw training weights under
``ema_state_dict`` (prefix ``module.``) — so it reproduces the logged ``ema/top1``; ``raw=True``
evaluates the raw ones (logged ``top1``). Converted official checkpoints (bare timm keys, no
``net.`` prefix) are read the same way.
"""
from __future__ import annotations

import os
from typing import Any

import torch

from ..errors import CheckpointError, DatasetError
from ..models.checkpoint import check_fits, embedded_arch, load_subnet, read_checkpoint
from ..space import Arch
from .classification import CreamClassifier


def build_eval_loader(data_root: 'str | os.PathLike', input_size: int, split: str = 'val', batch_size: int = 64,
                      num_workers: int = 2) -> Any:
    from mmengine.runner import Runner
    return Runner.build_dataloader(dict(
        batch_size=batch_size, num_workers=num_workers, persistent_workers=False,
        sampler=dict(type='DefaultSampler', shuffle=False), collate_fn=dict(type='default_collate'),
        dataset=dict(type='CreamImageFolder', root=str(data_root), split=split, input_size=input_size,
                     is_training=False)))


@torch.no_grad()
def evaluate_checkpoint(checkpoint: 'str | os.PathLike', data_root: 'str | os.PathLike', *,
                        arch: 'Arch | str | None' = None, split: str = 'val', raw: bool = False,
                        batch_size: int = 64, num_workers: int = 2, device: str | None = None) -> dict[str, Any]:
    """Top-1/top-5 (percent) of a checkpoint on ``<data_root>/<split>``, with the net's MACs and params.

    Returns ``{'top1', 'top5', 'macs', 'params', 'num_images', 'arch', 'weights'}``.
    """
    from mmengine.evaluator import Evaluator
    source = str(checkpoint)
    ckpt = read_checkpoint(checkpoint)
    if raw and 'ema_state_dict' not in ckpt:
        raise CheckpointError(f'{source}: no raw training weights (ema_state_dict); it was not written by '
                              f'a Runner with EMAHook — evaluate its state_dict instead')
    net_arch, sd = load_subnet(source, arch, use_ema=raw, ckpt=ckpt, given_as='--arch names',
                               missing='pass --arch NAME|FILE (the network it holds)',
                               fix='drop --arch (the embedded one is used) or pick the right checkpoint')
    if embedded_arch(ckpt, source) is None and 'classifier.weight' in sd:     # bare weights: trust their head
        net_arch = net_arch.with_(num_classes=int(sd['classifier.weight'].shape[0]))
    model = CreamClassifier(net_arch, drop_rate=0.0)
    check_fits(model.net, sd, source)
    model.net.load_state_dict(sd)
    model.to(device or ('cuda' if torch.cuda.is_available() else 'cpu')).eval()

    loader = build_eval_loader(data_root, net_arch.resolution, split, batch_size, num_workers)
    dataset = loader.dataset
    if dataset.num_classes != net_arch.num_classes:
        raise DatasetError(f'{data_root}: {dataset.num_classes} class folders, but {source} classifies '
                           f'{net_arch.num_classes} classes; evaluate on the dataset it was trained for')
    evaluator = Evaluator(dict(type='CreamAccuracy', topk=(1, 5)))
    evaluator.dataset_meta = dataset.metainfo
    for batch in loader:
        evaluator.process(data_samples=model.test_step(batch), data_batch=batch)
    metrics = evaluator.evaluate(len(dataset))
    weights = 'raw' if raw else ckpt.get('meta', {}).get('cream_weights', 'state_dict')
    return {**metrics, 'macs': net_arch.macs, 'params': net_arch.params, 'num_images': len(dataset),
            'arch': str(net_arch), 'weights': weights}


__all__ = ['build_eval_loader', 'evaluate_checkpoint']
