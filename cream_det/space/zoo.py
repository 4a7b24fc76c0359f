"""The six published Cream networks: their official choice lists and the arch files shipped beside them.

Data of the space layer (an arch file is read by :class:`~cream_det.space.Arch`), and
:func:`as_arch`, which reads a published name as readily as a file; building the networks, and
registering them in timm, is :mod:`cream_det.models.zoo`'s.
"""
from __future__ import annotations

from functools import lru_cache
import os
from pathlib import Path
from typing import Any, Mapping, NamedTuple

from ..errors import ArchError
from .arch import Arch

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


def as_arch(arch: 'Arch | str | os.PathLike | Mapping[str, Any]') -> Arch:
    """Accept an Arch, a zoo name (``cream_287``), an arch file path, or an arch dict."""
    if isinstance(arch, Arch):
        return arch
    if isinstance(arch, Mapping):
        return Arch.from_dict(arch)
    if isinstance(arch, (str, os.PathLike)):
        s = str(arch)
        if s in ZOO:
            return get_arch(s)
        p = Path(s)
        if p.suffix.lower() in ('.json', '.yaml', '.yml') or p.exists():
            return Arch.load(p)
        raise ArchError(f"'{s}' is neither a published net ({', '.join(ZOO)}) nor an arch file")
    raise ArchError(f'cannot make an arch from {type(arch).__name__}')


__all__ = ['ARCH_DIR', 'ZOO', 'ZooEntry', 'as_arch', 'get_arch']
