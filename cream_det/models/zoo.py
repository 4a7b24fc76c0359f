"""The six published Cream networks: arch files shipped with the package, registered in timm.

After ``import cream_det``, ``timm.create_model('cream_287')`` builds the network (random init;
weights come from a local checkpoint, see ``tools/convert_official.py``).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

from ..errors import ArchError
from ..space import Arch

ARCH_DIR = Path(__file__).parent / 'archs'


class ZooEntry(NamedTuple):
    choices: list          # the official choice list, as the authors' repository gives it
    resolution: int
    top1: float            # the authors' reported ImageNet accuracy
    top5: float


#: Official choice lists; the arch files in ``archs/`` are these read with the single-block rule.
ZOO: dict[str, ZooEntry] = {
    'cream_14': ZooEntry([[0], [3], [3, 3], [3, 3], [3], [3], [0]], 64, 53.8, 77.2),
    'cream_43': ZooEntry([[0], [3], [3, 1], [3, 1], [3, 3, 3], [3, 3], [0]], 96, 66.3, 86.7),
    'cream_114': ZooEntry([[0], [3], [3, 3], [3, 3], [3, 3, 3], [3, 3], [0]], 160, 72.8, 90.8),
    'cream_287': ZooEntry([[0], [3], [3, 3], [3, 1, 3], [3, 3, 3, 3], [3, 3, 3], [0]], 224, 77.6, 93.3),
    'cream_481': ZooEntry([[0], [3, 4, 3, 1], [3, 2, 3, 0], [3, 3, 3, 1, 1], [3, 3, 3, 3], [3, 3, 3, 3], [0]],
                          224, 79.2, 94.2),
    'cream_604': ZooEntry([[0], [3, 3, 2, 3, 3], [3, 2, 3, 2, 3], [3, 2, 3, 2, 3], [3, 3, 2, 2, 3, 3],
                           [3, 3, 2, 3, 3, 3], [0]], 224, 80.0, 94.7),
}


@lru_cache(maxsize=None)
def get_arch(name: str) -> Arch:
    """The arch of a published net, read from its shipped file (MACs/params checked on load)."""
    if name not in ZOO:
        raise ArchError(f"unknown published net '{name}'; valid names: {', '.join(ZOO)}")
    return Arch.load(ARCH_DIR / f'{name}.json').require_single_path(
        f'the published zoo ({name})', f'{ARCH_DIR / (name + ".json")} must hold the published single-path net')


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
