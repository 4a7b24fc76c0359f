"""The six published Cream networks (:mod:`cream_det.space.zoo`) registered in timm.

After ``import cream_det``, ``timm.create_model('cream_287')`` builds the network (random init;
weights come from a local checkpoint, see ``tools/convert_official.py``).
"""
from __future__ import annotations

from typing import Any

from ..space.zoo import ZOO, get_arch


def _register() -> None:
    from timm.models import register_model

    from .subnet import create_subnet

    def make(name: str):
        def fn(pretrained: bool = False, **kwargs: Any):
            return create_subnet(name, get_arch(name), pretrained=pretrained, **kwargs)
        fn.__name__ = name
        fn.__qualname__ = name
        fn.__module__ = __name__
        fn.__doc__ = f'Cream {name.split("_")[1]}M-MACs network (authors\' top-1 {ZOO[name].top1}).'
        return fn

    from timm.models import is_model
    for name in ZOO:
        if not is_model(name):
            globals()[name] = register_model(make(name))


_register()
