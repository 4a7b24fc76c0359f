"""``CreamFPN``: mmdet's FPN that can take its ``in_channels`` from the ``CreamBackbone`` it follows.

A Cream config should let a user swap ``model.backbone.arch`` (or ``out_indices``, or a searched
arch of another space with other widths) without repeating the widths in the neck. mmdet's own
tools build the detector straight from the config, so the widths cannot be filled in by a launcher:
they are resolved here, inside the registry, where mmdet's ``train.py``, ``test.py`` and
``get_flops.py`` build them too.

How: every mmdet detector builds its backbone and then, immediately, its neck. ``CreamBackbone``
announces its ``out_channels`` when it is built; ``CreamFPN(in_channels='auto')`` takes that
announcement (once: a second neck cannot reuse it). A neck built with no announcement pending gets
a clear error naming the fix; ``forward`` checks the widths it is fed, so a stale announcement
(a ``CreamBackbone`` built on its own, then an unrelated backbone before the neck) cannot pass
silently either.
"""
from __future__ import annotations

import threading
from typing import Any, Sequence

import torch
from mmdet.models.necks import FPN
from timm.models._efficientnet_builder import round_channels
from mmdet.registry import MODELS

from ..errors import ConfigError
from ..models.subnet import feature_channels
from .backbone_arch import resolve_arch

_pending = threading.local()

#: neck types that resolve ``in_channels='auto'`` themselves
AUTO_NECKS = ('CreamFPN',)


def announce_channels(channels: Sequence[int]) -> None:
    """Called by ``CreamBackbone.__init__``: the widths the next ``'auto'`` neck in this thread takes."""
    _pending.channels = [int(c) for c in channels]


def take_announced_channels() -> list[int] | None:
    """The pending widths, consumed (``None`` when no ``CreamBackbone`` was built since the last take)."""
    chans = getattr(_pending, 'channels', None)
    _pending.channels = None
    return chans


@MODELS.register_module()
class CreamFPN(FPN):
    """mmdet's ``FPN`` (same arguments, same weights layout) whose ``in_channels`` may be ``'auto'``.

    Args:
        in_channels: ``'auto'`` (the widths of the ``CreamBackbone`` built just before, as every
            mmdet detector does) or an explicit list, as for ``FPN``.
        **kwargs: everything ``mmdet.models.necks.FPN`` takes.
    """

    def __init__(self, in_channels: 'str | Sequence[int]' = 'auto', **kwargs: Any) -> None:
        announced = take_announced_channels()
        if isinstance(in_channels, str):
            if in_channels != 'auto':
                raise ConfigError(f"CreamFPN in_channels={in_channels!r}: 'auto' or a list of widths")
            if announced is None:
                raise ConfigError("CreamFPN in_channels='auto' takes the widths of the CreamBackbone built just "
                                  'before it (as a detector builds its backbone, then its neck); none was. Give '
                                  'in_channels=[...] explicitly (CreamBackbone(arch=...).out_channels lists them)')
            in_channels = announced
        super().__init__(in_channels=list(in_channels), **kwargs)

    def forward(self, inputs: tuple[torch.Tensor, ...]) -> tuple:
        got = [] if torch.jit.is_tracing() else [int(x.shape[1]) for x in inputs]   # (an export traces shapes)
        if got and got != list(self.in_channels):
            raise ConfigError(f'CreamFPN in_channels={list(self.in_channels)} but the backbone gives {got} '
                              "channels; set model.neck.in_channels='auto' or the backbone's widths")
        return super().forward(inputs)


def backbone_widths(cfg: Any) -> list[int] | None:
    """The widths a config's ``CreamBackbone`` returns (``None`` for another backbone)."""
    backbone = (cfg.get('model') or {}).get('backbone') or {}
    if backbone.get('type') != 'CreamBackbone':
        return None
    arch = resolve_arch(backbone.get('arch'), backbone.get('init_cfg'))
    # timm's builder rounds every width to a multiple of 8 (round_channels); feature_channels gives
    # the space's nominal widths, so round them as the built net does
    chans = tuple(round_channels(c) for c in feature_channels(arch))
    out_indices = tuple(backbone.get('out_indices', (1, 2, 3, 4)))
    try:
        return [chans[i] for i in out_indices]
    except IndexError:
        raise ConfigError(f'model.backbone.out_indices={out_indices}: each must be in 0..{len(chans) - 1}') from None


def check_neck_channels(cfg: Any) -> None:
    """Refuse, before anything is built, a neck whose widths cannot match the ``CreamBackbone``.

    Nothing is filled in: a config must run the same under mmdet's own tools, which never call
    this. ``'auto'`` on a neck that cannot resolve it and explicit widths that disagree with the
    backbone are the two mistakes caught here with a message instead of a bare assertion or a
    convolution shape error.
    """
    neck = (cfg.get('model') or {}).get('neck')
    if not isinstance(neck, dict):
        return
    have = neck.get('in_channels')
    if have == 'auto' and neck.get('type') not in AUTO_NECKS:
        raise ConfigError(f"model.neck.in_channels='auto' is resolved only by neck type {' or '.join(AUTO_NECKS)} "
                          f"(mmdet's own tools build {neck.get('type')!r}, which needs a list): set "
                          "model.neck.type='CreamFPN', or give the widths")
    want = backbone_widths(cfg)
    if want is None or have in (None, 'auto') or isinstance(have, str):
        return
    if [int(c) for c in have] != want:
        raise ConfigError(f'model.neck.in_channels={list(have)} but the CreamBackbone '
                          f'(out_indices={tuple(cfg.model.backbone.get("out_indices", (1, 2, 3, 4)))}) gives {want}; '
                          "set in_channels='auto' (neck type CreamFPN) or these widths")
