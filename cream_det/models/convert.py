"""Conversion of the authors' checkpoints onto timm-built subnets.

The authors' child network was itself built from timm blocks, so its parameter names are timm's:
conversion is unwrapping (``state_dict``/``state_dict_ema``, DDP ``module.`` prefix), a strict
key-and-shape check against the arch, and embedding the arch so later tools need only the file.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..space import Arch, as_arch
from .checkpoint import check_fits, extract_state_dict, read_checkpoint, save_subnet_checkpoint
from .subnet import build_subnet


def convert_official(src: 'str | os.PathLike', dst: 'str | os.PathLike', arch: 'Arch | str',
                     use_ema: bool = False) -> Path:
    arch = as_arch(arch).require_single_path(
        "the official-checkpoint converter", "the authors' Cream checkpoints are single-path networks; "
        "pass the published name or arch file they were trained for")
    ckpt = read_checkpoint(src)
    sd = extract_state_dict(ckpt, use_ema=use_ema, source=str(src))
    model = build_subnet(arch)
    check_fits(model, sd, str(src))
    model.load_state_dict(sd)                          # dtype/shape are final: what we save loads
    return save_subnet_checkpoint(dst, model.state_dict(), arch, source=str(src),
                                  weights='state_dict_ema' if use_ema else 'state_dict',
                                  epoch=ckpt.get('epoch'))
