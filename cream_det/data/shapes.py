"""A procedurally generated proxy task for comparing search strategies: cluttered shapes, 10 classes.

Why: on the embedded digits every reasonable arch retrains to ~99 %, so no ranking of archs (and
no comparison of NAS methods) can be read from them. This task is generated, never downloaded,
and has the properties a ranking study needs: ten classes told apart by outline *and* interior
(a disc vs a ring, a square vs a hollow square), drawn large at a random position, size, rotation
and colour over a smooth coloured background with small distractor shapes of other classes and
pixel noise. Telling a filled from a hollow shape under clutter takes spatial context, and short
trainings stay well below 100 %. Measured at 32 px in the Cream space, though, width matters and
kernel size barely does, and given 4 epochs every arch ends near 98-99 % (README, "Cream and its
peers on a task with signal"): the task is easier than this design meant.

Written in the ImageNet folder layout (``train/<wnid>/*.JPEG``, ``val/<wnid>/*.JPEG``) so the
real loaders read it; every random choice comes from ``seed``, so equal arguments give
byte-identical files.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ._generated import check_args, smooth_field, write_imagenet_set

CLASSES = ('disc', 'ring', 'square', 'hollow_square', 'triangle', 'plus', 'cross', 'diamond', 'bars', 'half_disc')
NUM_CLASSES = len(CLASSES)
SUPERSAMPLE = 2          # shapes are drawn at twice the size and averaged down: soft edges


def make_imagenet_shapes(out_dir: str | os.PathLike, *, size: int = 32, num_train: int = 5000, num_val: int = 1000,
                         seed: int = 0, distractors: int = 3, noise: float = 12.0, force: bool = False) -> Path:
    """Write the cluttered-shapes set: ``num_train``/``num_val`` images, classes balanced, JPEG.

    Args:
        size: image side in pixels (>= 16).
        distractors: small shapes of other classes scattered behind the main one.
        noise: standard deviation of the per-pixel Gaussian noise (0-255 scale).
    """
    check_args(size=size, num_train=num_train, num_val=num_val, num_classes=NUM_CLASSES, distractors=distractors,
               noise=noise, seed=seed)
    return write_imagenet_set(out_dir, names=CLASSES, num_train=num_train, num_val=num_val, seed=seed, force=force,
                              draw=lambda label, rng: render(label, size, rng, distractors, noise))


def render(label: int, size: int, rng: np.random.Generator, distractors: int = 3, noise: float = 12.0) -> np.ndarray:
    """One ``size x size x 3`` float image (0-255) of class ``label``."""
    n = size * SUPERSAMPLE
    canvas = _background(rng, n)
    for _ in range(distractors):                       # small shapes of other classes, behind the main one
        other = int(rng.choice([k for k in range(NUM_CLASSES) if k != label]))
        _paint(canvas, _mask(other, n, rng, scale=(0.10, 0.18)), _colour(rng, canvas))
    _paint(canvas, _mask(label, n, rng, scale=(0.28, 0.42)), _colour(rng, canvas))
    image = canvas.reshape(size, SUPERSAMPLE, size, SUPERSAMPLE, 3).mean(axis=(1, 3))
    return image + rng.normal(0.0, noise, image.shape)


def _background(rng: np.random.Generator, n: int) -> np.ndarray:
    """A smooth random colour field: a 4x4 grid of colours, bilinearly upsampled."""
    return smooth_field(rng.uniform(0, 255, size=(4, 4, 3)), n)


def _colour(rng: np.random.Generator, canvas: np.ndarray) -> np.ndarray:
    """A colour far from the background's mean, so the shape is visible but its colour says nothing."""
    mean = canvas.reshape(-1, 3).mean(0)
    while True:
        c = rng.uniform(0, 255, size=3)
        if np.linalg.norm(c - mean) > 90:
            return c


def _paint(canvas: np.ndarray, mask: np.ndarray, colour: np.ndarray) -> None:
    canvas[mask] = colour


def _mask(label: int, n: int, rng: np.random.Generator, scale: tuple[float, float]) -> np.ndarray:
    """Boolean mask of shape ``label``: random radius (a fraction of the image), centre inside it, rotation."""
    r = rng.uniform(*scale) * n
    cx, cy = rng.uniform(r, n - r, size=2)
    theta = rng.uniform(-0.35, 0.35)
    y, x = np.mgrid[0:n, 0:n] + 0.5
    dx, dy = (x - cx) / r, (y - cy) / r
    u = np.cos(theta) * dx + np.sin(theta) * dy
    v = -np.sin(theta) * dx + np.cos(theta) * dy
    rad, box = np.hypot(u, v), np.maximum(abs(u), abs(v))
    name = CLASSES[label]
    if name == 'disc':
        return rad <= 1
    if name == 'ring':
        return (rad <= 1) & (rad >= 0.55)
    if name == 'square':
        return box <= 0.8
    if name == 'hollow_square':
        return (box <= 0.85) & (box >= 0.5)
    if name == 'triangle':
        return (v <= 0.75) & (abs(u) <= (v + 0.9) * 0.55)
    if name == 'plus':
        return ((abs(u) <= 0.25) & (abs(v) <= 0.95)) | ((abs(v) <= 0.25) & (abs(u) <= 0.95))
    if name == 'cross':
        a, b = (u + v) / np.sqrt(2), (u - v) / np.sqrt(2)
        return ((abs(a) <= 0.25) & (abs(b) <= 0.95)) | ((abs(b) <= 0.25) & (abs(a) <= 0.95))
    if name == 'diamond':
        return abs(u) + abs(v) <= 0.95
    if name == 'bars':
        return (abs(u) <= 0.9) & ((abs(v - 0.45) <= 0.2) | (abs(v + 0.45) <= 0.2))
    return (rad <= 1) & (v >= 0)                                                        # half_disc


__all__ = ['CLASSES', 'NUM_CLASSES', 'make_imagenet_shapes', 'render']
