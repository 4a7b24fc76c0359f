"""What the generated proxy sets (shapes, glyphs) share: their argument checks, the ImageNet-layout
writer and the smooth background.

One writer so that every generated set has the same layout, file names and seeding: image ``i`` of a
split is drawn from ``default_rng((seed, split_seed, i))`` alone, so a set is byte-identical for equal
arguments and a larger set holds a smaller one's images (the proxy harness reuses stored results by
the set's path and size, which is only sound if the bytes follow from them).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ._atomic import atomic_dir
from .digits import require, require_seed, save_jpeg, wnid

SPLITS = (('train', 0), ('val', 1))      # split name, the seed component that keeps the splits' images apart


def check_args(*, size: int, num_train: int, num_val: int, num_classes: int, distractors: int, noise: float,
               seed: int) -> None:
    """The arguments every generated set takes, checked before anything is written (a ``ConfigError``)."""
    require(isinstance(size, int) and size >= 16, f'size must be an int >= 16, got {size!r}')
    for name, n in (('num_train', num_train), ('num_val', num_val)):
        require(isinstance(n, int) and n >= num_classes, f'{name} must be an int >= {num_classes}, got {n!r}')
    require(isinstance(distractors, int) and distractors >= 0, f'distractors must be an int >= 0, got {distractors!r}')
    require(noise >= 0, f'noise must be >= 0, got {noise!r}')
    require_seed(seed)


def write_imagenet_set(out_dir: str | os.PathLike, *, names: Sequence[str], num_train: int, num_val: int, seed: int,
                       draw: Callable[[int, np.random.Generator], np.ndarray], force: bool = False) -> Path:
    """``out_dir/{train,val}/<wnid>/<wnid>_<i>.JPEG`` and ``labels.txt`` (``<wnid> <name>`` a line), atomically.

    Image ``i`` is of class ``i % len(names)`` (balanced classes), drawn by ``draw(label, rng)``."""
    with atomic_dir(out_dir, force) as tmp:
        for (split, split_seed), count in zip(SPLITS, (num_train, num_val)):
            for i in range(count):
                label = i % len(names)
                folder = tmp / split / wnid(label)
                folder.mkdir(parents=True, exist_ok=True)
                save_jpeg(draw(label, np.random.default_rng((seed, split_seed, i))),
                          folder / f'{wnid(label)}_{i:06d}.JPEG')
        (tmp / 'labels.txt').write_text(''.join(f'{wnid(k)} {name}\n' for k, name in enumerate(names)))
    return Path(out_dir)


def smooth_field(grid: np.ndarray, n: int) -> np.ndarray:
    """A 4 x 4 x C ``grid`` of colours bilinearly upsampled to ``n x n x C``: a background with no edges of its own."""
    t = np.linspace(0, 3, n)
    i = np.minimum(t.astype(int), 2)
    f = (t - i)[:, None]
    rows = grid[i] * (1 - f[..., None]) + grid[i + 1] * f[..., None]                  # (n, 4, C)
    return rows[:, i] * (1 - f[None, :, :]) + rows[:, i + 1] * f[None, :, :]        # (n, n, C)


__all__ = ['check_args', 'smooth_field', 'write_imagenet_set']
