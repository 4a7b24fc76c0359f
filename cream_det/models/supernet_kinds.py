"""Which supernet class runs which kind of path codes.

The path codes own the choice (:attr:`cream_det.space.codes.PathCodes.supernet` names the kind:
single-path op indices, or MixPath's op-set masks); the space layer may not import models, so the
map from that name to the class lives here, beside the classes. A caller holding the codes of its
search (``SupernetSearch``) asks :func:`supernet_class` instead of branching on ``max_paths``.
"""
from __future__ import annotations

from ..errors import ConfigError
from ..space.codes import MULTI_PATH, SINGLE_PATH, PathCodes
from .mixpath_supernet import MixPathSupernet
from .supernet import Supernet

#: supernet class per :attr:`PathCodes.supernet` (each class's own ``codes`` name it back)
SUPERNETS: dict[str, type[Supernet]] = {SINGLE_PATH: Supernet, MULTI_PATH: MixPathSupernet}


def supernet_class(codes: PathCodes) -> type[Supernet]:
    """The supernet that runs paths written in ``codes`` (one clear error for a kind no class runs)."""
    try:
        return SUPERNETS[codes.supernet]
    except KeyError:
        raise ConfigError(f'no supernet runs paths of kind {codes.supernet!r} ({codes!r}); '
                          f'known kinds: {", ".join(SUPERNETS)}') from None


__all__ = ['SUPERNETS', 'supernet_class']
