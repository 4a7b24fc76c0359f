"""The cluttered-glyphs proxy task: generated from matplotlib's fonts, ImageNet layout, deterministic."""

import numpy as np
import pytest
from PIL import Image, ImageDraw

from cream_det.data import glyphs
from cream_det.data.glyphs import CLASSES, FONTS, make_imagenet_glyphs, render
from cream_det.data.imagenet import CreamImageFolder
from cream_det.errors import ConfigError, DatasetError
from image_sets import jpeg_digest


def test_layout_balance_and_determinism(tmp_path):
    n = len(CLASSES)
    a = make_imagenet_glyphs(tmp_path / 'a', size=32, num_train=2 * n, num_val=n, seed=3)
    b = make_imagenet_glyphs(tmp_path / 'b', size=32, num_train=2 * n, num_val=n, seed=3)
    c = make_imagenet_glyphs(tmp_path / 'c', size=32, num_train=2 * n, num_val=n, seed=4)
    assert jpeg_digest(a) == jpeg_digest(b) != jpeg_digest(c)
    for split, k in (('train', 2), ('val', 1)):
        folders = sorted(p for p in (a / split).iterdir())
        assert len(folders) == n and all(len(list(f.glob('*.JPEG'))) == k for f in folders)
    ds = CreamImageFolder(str(a), split='val', input_size=32, is_training=False, crop_pct=1.0)
    assert tuple(ds[0]['inputs'].shape) == (3, 32, 32) and len(ds) == n
    assert int(ds[n - 1]['label']) == n - 1
    assert (a / 'labels.txt').read_text().splitlines()[10].endswith(' glyph_A')


def test_classes_are_the_glyph_drawn():
    """Same draws (typeface, size, place, colours, noise) but another class: the pixels differ only where ink is,
    and a glyph covers a fair part of the image (not a speck, not the whole)."""
    rng = lambda: np.random.default_rng(5)      # noqa: E731
    b, eight = (render(CLASSES.index(c), 32, rng(), distractors=0, noise=0) for c in ('B', '8'))
    back = np.random.default_rng(5)
    differ = np.abs(b - eight).sum(-1) > 30
    assert 5 < differ.sum() < 32 * 32 // 4
    ink = np.abs(b - glyphs._paper(back, 32 * glyphs.SUPERSAMPLE).reshape(32, 4, 32, 4, 3).mean((1, 3)))
    assert 0.03 < (ink.sum(-1) > 60).mean() < 0.6
    assert (b.mean(-1)[ink.sum(-1) > 60] < 150).mean() > 0.8       # dark ink on light paper
    assert len(set(CLASSES)) == len(CLASSES) == 34 and 'O' not in CLASSES and 'I' not in CLASSES


def test_every_typeface_draws_every_class():
    """A font without one of the glyphs would draw a box or nothing: every class must differ from every other
    in every typeface (compared at the same draws), or the task would hold unreadable images."""
    size = 64
    for f in range(len(FONTS)):
        drawn = []
        for k in range(len(CLASSES)):
            layer = Image.new('L', (size, size), 0)
            font = glyphs._font(f, 40)
            ImageDraw.Draw(layer).text((size / 2, size / 2), CLASSES[k], fill=255, font=font, anchor='mm')
            drawn.append(np.asarray(layer, dtype=np.float32) / 255)
        ink = [d.sum() for d in drawn]
        assert min(ink) > 20, (FONTS[f], CLASSES[int(np.argmin(ink))])
        stack = np.stack(drawn).reshape(len(CLASSES), -1)
        dist = np.abs(stack[:, None] - stack[None]).sum(-1) + np.eye(len(CLASSES)) * 1e9
        i, j = np.unravel_index(np.argmin(dist), dist.shape)
        assert dist[i, j] > 10, (FONTS[f], CLASSES[i], CLASSES[j])


def test_bad_arguments_and_missing_fonts(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match='size'):
        make_imagenet_glyphs(tmp_path / 'x', size=8)
    with pytest.raises(ConfigError, match='num_train'):
        make_imagenet_glyphs(tmp_path / 'x', num_train=3)
    monkeypatch.setattr(glyphs, 'FONTS', glyphs.FONTS + ('NoSuchFont.ttf',))
    with pytest.raises(DatasetError, match='NoSuchFont.ttf'):
        make_imagenet_glyphs(tmp_path / 'y', num_train=40, num_val=40)
    assert not (tmp_path / 'y').exists()
