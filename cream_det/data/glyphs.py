"""A generated proxy task told apart by detail: 34 font glyphs (digits and capitals), dark ink on light paper.

Why: on the cluttered shapes (``shapes.py``) every arch of the Cream space learns the ten classes
given a little time, so what separates archs there is how fast a run leaves its first plateau, and
two seeds of the same arch differ by as much as two archs do. Glyphs are told apart by strokes a
pixel or two wide at 32 px (B/8, S/5, Z/2, G/C/6, P/R, U/V/Y), in 21 typefaces, rotated, scaled and
placed at random with two small glyphs of other classes behind, so reading them takes capacity
and a receptive field (measured: a 7x7 kernel everywhere gains 3 points over 3x3 at the same
expansion, where on the shapes kernels barely mattered). The ink is always darker than the paper:
drawn in random colours on random colour fields like the shapes, the same glyphs left every arch
near chance for ~1,000 steps and two seeds of one arch 3-4 points apart (docs/proxy_task.md);
finding the glyph is then the hard part, and how long a run takes to do it is noise.
The typefaces are the TrueType files matplotlib ships (a dependency of this package), so nothing
is downloaded; ``O`` and ``I`` are left out, being ``0`` and ``1`` in several of them.

Written in the ImageNet folder layout (``train/<wnid>/*.JPEG``, ``val/<wnid>/*.JPEG``) so the real
loaders read it; every random choice comes from ``seed``, so equal arguments give identical files
(given the same matplotlib fonts and Pillow).
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..errors import DatasetError
from ._generated import check_args, smooth_field, write_imagenet_set

CLASSES = tuple('0123456789ABCDEFGHJKLMNPQRSTUVWXYZ')
NUM_CLASSES = len(CLASSES)
FONTS = ('DejaVuSans.ttf', 'DejaVuSans-Bold.ttf', 'DejaVuSans-Oblique.ttf', 'DejaVuSans-BoldOblique.ttf',
         'DejaVuSansMono.ttf', 'DejaVuSansMono-Bold.ttf', 'DejaVuSansMono-Oblique.ttf',
         'DejaVuSansMono-BoldOblique.ttf', 'DejaVuSerif.ttf', 'DejaVuSerif-Bold.ttf', 'DejaVuSerif-Italic.ttf',
         'DejaVuSerif-BoldItalic.ttf', 'STIXGeneral.ttf', 'STIXGeneralBol.ttf', 'STIXGeneralItalic.ttf',
         'STIXGeneralBolIta.ttf', 'cmr10.ttf', 'cmb10.ttf', 'cmss10.ttf', 'cmti10.ttf', 'cmtt10.ttf')
SUPERSAMPLE = 4          # glyphs are drawn at four times the size and averaged down: soft strokes


def make_imagenet_glyphs(out_dir: str | os.PathLike, *, size: int = 32, num_train: int = 5000, num_val: int = 1000,
                         seed: int = 0, distractors: int = 2, noise: float = 12.0, force: bool = False) -> Path:
    """Write the glyphs set: ``num_train``/``num_val`` images, classes balanced, JPEG.

    Args:
        size: image side in pixels (>= 16).
        distractors: small glyphs of other classes scattered behind the main one.
        noise: standard deviation of the per-pixel Gaussian noise (0-255 scale).
    """
    check_args(size=size, num_train=num_train, num_val=num_val, num_classes=NUM_CLASSES, distractors=distractors,
               noise=noise, seed=seed)
    font_files()                                      # a missing font fails here, before anything is written
    return write_imagenet_set(out_dir, names=[f'glyph_{c}' for c in CLASSES], num_train=num_train, num_val=num_val,
                              seed=seed, force=force, draw=lambda label, rng: render(label, size, rng, distractors, noise))


def render(label: int, size: int, rng: np.random.Generator, distractors: int = 2, noise: float = 12.0) -> np.ndarray:
    """One ``size x size x 3`` float image (0-255) of class ``label``."""
    n = size * SUPERSAMPLE
    canvas = _paper(rng, n)
    for _ in range(distractors):                       # small glyphs of other classes, behind the main one
        other = int(rng.choice([k for k in range(NUM_CLASSES) if k != label]))
        _paint(canvas, _glyph_alpha(other, n, rng, scale=(0.22, 0.32)), _ink(rng))
    _paint(canvas, _glyph_alpha(label, n, rng, scale=(0.55, 0.8)), _ink(rng))
    image = canvas.reshape(size, SUPERSAMPLE, size, SUPERSAMPLE, 3).mean(axis=(1, 3))
    return image + rng.normal(0.0, noise, image.shape)


def font_files() -> list[Path]:
    """The typefaces' paths inside matplotlib's data; a missing one is a :class:`DatasetError`."""
    import matplotlib
    folder = Path(matplotlib.get_data_path()) / 'fonts' / 'ttf'
    paths = [folder / name for name in FONTS]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise DatasetError(f"matplotlib's fonts {', '.join(missing)} are not in {folder}: the glyph task draws with "
                           'them (reinstall matplotlib)')
    return paths


@functools.lru_cache(maxsize=None)
def _font(index: int, px: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(font_files()[index]), px)


def _glyph_alpha(label: int, n: int, rng: np.random.Generator, scale: tuple[float, float]) -> np.ndarray:
    """Coverage (0-1) of glyph ``label``: random typeface, height (a fraction of the image), rotation, position."""
    font = _font(int(rng.integers(len(FONTS))), max(4, int(rng.uniform(*scale) * n)))
    layer = Image.new('L', (n, n), 0)
    ImageDraw.Draw(layer).text((n / 2, n / 2), CLASSES[label], fill=255, font=font, anchor='mm')
    layer = layer.rotate(float(rng.uniform(-15, 15)), resample=Image.BILINEAR)
    box = layer.getbbox()
    if box is None:                                    # never for these fonts and sizes; an empty glyph would be a bug
        raise DatasetError(f'glyph {CLASSES[label]!r} drew nothing')
    crop = np.asarray(layer.crop(box), dtype=np.float32) / 255.0
    h, w = crop.shape
    alpha = np.zeros((n, n), np.float32)
    y, x = int(rng.integers(0, max(1, n - h + 1))), int(rng.integers(0, max(1, n - w + 1)))
    alpha[y:y + h, x:x + w] = crop[:n - y, :n - x]
    return alpha


def _paper(rng: np.random.Generator, n: int) -> np.ndarray:
    """A light, smoothly tinted background: a 4x4 grid of light colours, bilinearly upsampled."""
    return smooth_field(rng.uniform(150, 255, size=(4, 4, 3)), n)


def _ink(rng: np.random.Generator) -> np.ndarray:
    """A dark colour: the glyph is always darker than the paper (finding it is easy; reading it is the task)."""
    return rng.uniform(0, 100, size=3)


def _paint(canvas: np.ndarray, alpha: np.ndarray, colour: np.ndarray) -> None:
    canvas *= 1.0 - alpha[..., None]
    canvas += alpha[..., None] * colour


__all__ = ['CLASSES', 'FONTS', 'NUM_CLASSES', 'font_files', 'make_imagenet_glyphs', 'render']
