"""Which network a ``CreamBackbone`` config means, before anything is built.

Asked by the backbone and by the ``CreamFPN`` (and the launcher's neck check) that must know its
widths, so it sits below both.
"""
from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from ..models.checkpoint import checkpoint_arch
from ..space import Arch, as_arch


def pretrained_path(init_cfg: Any) -> str | None:
    cfgs = init_cfg if isinstance(init_cfg, (list, tuple)) else [init_cfg]
    for c in cfgs:
        if isinstance(c, dict) and c.get('type') == 'Pretrained':
            return c.get('checkpoint')
    return None


def resolve_arch(arch: 'Arch | str | dict | None', init_cfg: Any = None) -> Arch:
    """The backbone's arch: given explicitly, or embedded in the ``Pretrained`` checkpoint.

    Only the arch is read here (the file mapped, its tensors left on disk, one answer for the
    backbone and the ``CreamFPN`` that asks after it); the weights are read once, in ``init_weights``.
    """
    ckpt_path = pretrained_path(init_cfg)
    if arch is None:
        if ckpt_path is None:
            raise ConfigError('CreamBackbone needs arch= (a published name such as cream_287 or an arch file) '
                              'or init_cfg=dict(type="Pretrained", checkpoint=...) pointing at a checkpoint '
                              'that embeds its arch (tools/retrain.py and tools/convert_official.py write those)')
        found = checkpoint_arch(ckpt_path)
        if found is None:
            raise ConfigError(f'{ckpt_path} embeds no arch; pass arch= to CreamBackbone')
        return found
    return as_arch(arch)


__all__ = ['pretrained_path', 'resolve_arch']
