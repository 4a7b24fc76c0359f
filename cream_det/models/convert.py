"""Conversion of the authors' checkpoints onto timm-built subnets.

The authors' child network was itself built from timm blocks, so its parameter names are timm's:
conversion is unwrapping (``state_dict``/``state_dict_ema``, DDP ``module.`` prefix), a strict
key-and-shape check against the arch, and embedding the arch so later tools need only the file.

The EMA copy is the default: the authors' published accuracies are those of ``state_dict_ema``
(their ``tools/test.py:118-126,150-154`` loads it into timm's ``ModelEma`` and evaluates only that
model), and their retraining reports the EMA model's accuracy as each epoch's metric
(``tools/retrain.py:275-286``).
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..space import Arch, as_arch
from .checkpoint import check_fits, extract_state_dict, read_checkpoint, save_subnet_checkpoint
from .subnet import build_subnet

EMA_KEY = 'state_dict_ema'          # timm's CheckpointSaver / ModelEma key, the authors' checkpoints
RAW_KEY = 'state_dict'


def official_weights(ckpt: Mapping[str, Any], use_ema: bool | None = None) -> str:
    """Which weights of an authors' checkpoint to take: ``'state_dict_ema'`` or ``'state_dict'``.

    ``use_ema=None`` takes the EMA copy when the checkpoint has one (what the published numbers
    were measured on), else the raw weights; ``True`` requires it; ``False`` takes the raw ones.
    """
    if use_ema is None:
        return EMA_KEY if isinstance(ckpt.get(EMA_KEY), Mapping) else RAW_KEY
    return EMA_KEY if use_ema else RAW_KEY


def convert_official(src: 'str | os.PathLike', dst: 'str | os.PathLike', arch: 'Arch | str',
                     use_ema: bool | None = None) -> Path:
    """Check the authors' checkpoint ``src`` against ``arch`` and write it to ``dst`` with the arch
    embedded; ``meta.weights`` records which copy was taken (see :func:`official_weights`)."""
    arch = as_arch(arch).require_single_path(
        "the official-checkpoint converter", "the authors' Cream checkpoints are single-path networks; "
        "pass the published name or arch file they were trained for")
    ckpt = read_checkpoint(src)
    weights = official_weights(ckpt, use_ema)
    sd = extract_state_dict(ckpt, use_ema=weights == EMA_KEY, source=str(src))
    model = build_subnet(arch)
    check_fits(model, sd, str(src))
    model.load_state_dict(sd)                          # dtype/shape are final: what we save loads
    return save_subnet_checkpoint(dst, model.state_dict(), arch, source=str(src), weights=weights,
                                  epoch=ckpt.get('epoch'))
