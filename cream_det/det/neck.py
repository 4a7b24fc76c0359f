"""Fill the FPN's ``in_channels`` from a ``CreamBackbone`` config, so a config never repeats widths."""
from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from ..models.subnet import feature_channels


def fill_neck_channels(cfg: Any) -> None:
    """``neck.in_channels='auto'`` becomes the backbone's widths; explicit widths must agree with them."""
    model = cfg.get('model') or {}
    backbone, neck = model.get('backbone') or {}, model.get('neck')
    if backbone.get('type') != 'CreamBackbone' or not isinstance(neck, dict):
        return
    from .backbone import resolve_arch
    arch = resolve_arch(backbone.get('arch'), backbone.get('init_cfg'))
    chans = feature_channels(arch)
    out_indices = tuple(backbone.get('out_indices', (1, 2, 3, 4)))
    try:
        want = [chans[i] for i in out_indices]
    except IndexError:
        raise ConfigError(f'model.backbone.out_indices={out_indices}: each must be in 0..{len(chans) - 1}') from None
    have = neck.get('in_channels', 'auto')
    if have == 'auto':
        neck['in_channels'] = want
    elif list(have) != want:
        raise ConfigError(f'model.neck.in_channels={list(have)} but the CreamBackbone (out_indices={out_indices}) '
                          f'gives {want}; set in_channels=\'auto\'')
