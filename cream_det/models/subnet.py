"""Subnets are plain timm MobileNetV3-family models built from the arch's block strings.

Nothing here re-implements a block: timm's EfficientNet builder decodes the strings
(``ir_r1_k5_s2_e6_c40_se0.25`` …) and builds the authors' exact network once it is given the
paper's details — Swish everywhere, SE whose reduced width is rounded from the expanded width
with a ReLU inside and a hard-sigmoid gate, and MobileNetV3's "pool, then 1x1 conv with bias"
head. Being a timm model, a subnet gets timm's ``features_only`` machinery for detection.

A multi-path (MixPath) arch is built the same way from its skeleton (each multi-path layer as its
first op), and then each multi-path layer's block is swapped for a
:class:`~cream_det.models.mixed_op.MixedOpBlock` whose branches timm's builder builds from their
block strings: the model stays a timm model (``features_only``, feature info, ``CreamBackbone``).
"""
from __future__ import annotations

from functools import partial
from typing import Any, Sequence

import torch.nn as nn
from timm.models import build_model_with_cfg
from timm.models._efficientnet_blocks import SqueezeExcite
from timm.models._efficientnet_builder import (EfficientNetBuilder, decode_arch_def, efficientnet_init_weights,
                                              round_channels)
from timm.models.mobilenetv3 import MobileNetV3, MobileNetV3Features

from ..space import Arch, as_arch
from ..space.spec import FixedBlock
from .mixed_op import MixedOpBlock

#: Feature levels a features-only subnet exposes (index: stride) — see ``feature_info``.
FEATURE_STRIDES = (2, 4, 8, 16, 32)

# classification-head arguments the features-only class does not take (as timm's own mnv3 factory)
_FEATURES_DROP = ('num_classes', 'num_features', 'head_conv', 'head_bias', 'head_norm', 'global_pool')

_SE_LAYER = partial(SqueezeExcite, gate_layer='hard_sigmoid', force_act_layer=nn.ReLU, rd_round_fn=round_channels)


def model_kwargs(arch: Arch) -> dict[str, Any]:
    """Constructor arguments of timm's MobileNetV3 that give the authors' network for ``arch``."""
    sp = arch.space
    return dict(
        block_args=decode_arch_def(arch.skeleton().block_strings()),
        stem_size=sp.stem_channels,
        num_features=sp.head_channels,
        head_bias=True,
        act_layer=nn.SiLU,
        se_layer=_SE_LAYER,
        se_from_exp=True,
        round_chs_fn=round_channels,
        num_classes=arch.num_classes,
    )


def pretrained_cfg(arch: Arch, **extra: Any) -> dict[str, Any]:
    r = arch.resolution
    return dict(url='', num_classes=arch.num_classes, input_size=(3, r, r), pool_size=(r // 32, r // 32),
                crop_pct=0.875, interpolation='bicubic', mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
                first_conv='conv_stem', classifier='classifier', **extra)


def create_subnet(variant: str, arch: Arch, pretrained: bool = False, features_only: bool = False,
                  out_indices: Sequence[int] = (0, 1, 2, 3, 4), **kwargs: Any) -> nn.Module:
    """timm-style constructor shared by :func:`build_subnet` and the registered zoo names."""
    if pretrained:
        from ..errors import CheckpointError
        raise CheckpointError(
            f'{variant}: no weights can be downloaded. Build with pretrained=False and load a local '
            f'checkpoint with cream_det.models.load_weights(model, PATH) (or timm.create_model(..., '
            f'checkpoint_path=PATH)); tools/convert_official.py converts the authors\' checkpoints.')
    overlay = kwargs.pop('pretrained_cfg_overlay', None) or {}
    cfg = kwargs.pop('pretrained_cfg', None) or pretrained_cfg(arch)
    cfg = {**cfg, **overlay}
    kwargs.pop('cache_dir', None)
    kw = model_kwargs(arch)
    kw.update(kwargs)
    if features_only:
        kw.pop('drop_rate', None)
        model = build_model_with_cfg(MobileNetV3Features, variant, False, pretrained_cfg=cfg,
                                     pretrained_strict=False, kwargs_filter=_FEATURES_DROP,
                                     out_indices=tuple(out_indices), **kw)
    else:
        model = build_model_with_cfg(MobileNetV3, variant, False, pretrained_cfg=cfg, **kw)
    if arch.is_multipath:
        install_mixed_blocks(model, arch, kw)
    model.cream_arch = arch     # lets checkpoint writers embed the arch without being told it
    return model


def build_block(kwargs: dict[str, Any], block_str: str, in_chs: int) -> tuple[nn.Module, int]:
    """One block from its string by timm's builder, with the subnet's arguments; returns (block, out width)."""
    builder = EfficientNetBuilder(output_stride=32, pad_type='', round_chs_fn=kwargs['round_chs_fn'],
                                  se_from_exp=kwargs['se_from_exp'], act_layer=kwargs['act_layer'],
                                  norm_layer=nn.BatchNorm2d, se_layer=kwargs['se_layer'])
    (stage,) = builder(in_chs, decode_arch_def([[block_str]]))
    return stage[0], builder.in_chs


def install_mixed_blocks(model: nn.Module, arch: Arch, kwargs: dict[str, Any]) -> None:
    """Swap the skeleton's block at every multi-path layer of ``arch`` for a :class:`MixedOpBlock`.

    The branches come from timm's builder (same arguments as the model), the stochastic-depth
    module is the skeleton block's own (timm's per-block rate), and the new block gets timm's
    EfficientNet initialisation like the rest of the model.
    """
    for s, layers in enumerate(arch.stages):
        for i, layer in enumerate(layers):
            if not isinstance(layer, tuple):
                continue
            old = model.blocks[s + 1][i]
            branches = [build_block(kwargs, arch.block_string(s, i, op), old.conv_pw.in_channels)[0] for op in layer]
            block = MixedOpBlock(branches, drop_path=old.drop_path)
            efficientnet_init_weights(block)
            model.blocks[s + 1][i] = block


def build_subnet(arch: 'Arch | str', *, drop_rate: float = 0.0, drop_path_rate: float = 0.0,
                 features_only: bool = False, out_indices: Sequence[int] = (0, 1, 2, 3, 4),
                 num_classes: int | None = None) -> nn.Module:
    """Build the timm network of an arch (an :class:`Arch`, a zoo name or an arch file path)."""
    arch = as_arch(arch)
    if num_classes is not None and num_classes != arch.num_classes:
        arch = arch.with_(num_classes=num_classes)
    variant = arch.name or f'cream_{arch.hash}'
    kw: dict[str, Any] = dict(drop_path_rate=drop_path_rate)
    if not features_only:
        kw['drop_rate'] = drop_rate
    return create_subnet(variant, arch, features_only=features_only, out_indices=out_indices, **kw)


#: classifier inits: ``'timm'`` as built (uniform in +-1/sqrt(classes), the authors' rule, sized for 1,000
#: classes) or ``'zero'`` (every logit 0 at the start: for few classes, see docs/proxy_task.md)
HEAD_INITS = ('timm', 'zero')


def init_head_(classifier: nn.Linear, head_init: str) -> None:
    """Re-initialise a built net's classifier by ``head_init`` (one of :data:`HEAD_INITS`, checked by the caller,
    whose error it is: a search config's or a training's)."""
    if head_init == 'zero':
        nn.init.zeros_(classifier.weight)
        nn.init.zeros_(classifier.bias)


def feature_channels(arch: 'Arch | str') -> tuple[int, ...]:
    """Output channels of the feature levels (strides 2, 4, 8, 16, 32) without building the net.

    Mirrors timm's builder: a level ends with the stem or the last block before a stride-2 stage,
    and the final 1x1 conv closes the last level. The first block is the space's ``first_block``
    (its own width and stride), not the stem's width.
    """
    sp = as_arch(arch).space
    fb = FixedBlock.parse(sp.first_block)
    trunk = ([(sp.stem_channels, 2), (fb.out_channels, fb.stride)] + [(st.out_channels, st.stride) for st in sp.stages]
             + [(sp.last_channels, 1)])
    return tuple(c for i, (c, _) in enumerate(trunk) if i + 1 == len(trunk) or trunk[i + 1][1] == 2)


__all__ = ['HEAD_INITS', 'build_subnet', 'create_subnet', 'feature_channels', 'init_head_', 'model_kwargs',
           'pretrained_cfg',
           'FEATURE_STRIDES']
