"""The cluttered-shapes proxy task (generated, ImageNet layout) and the ground-truth harness."""
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cream_det.data.shapes import CLASSES, make_imagenet_shapes, render
from cream_det.data.imagenet import CreamImageFolder
from cream_det.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(root.rglob('*.JPEG')):
        h.update(f.relative_to(root).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def test_layout_balance_and_determinism(tmp_path):
    a = make_imagenet_shapes(tmp_path / 'a', size=32, num_train=40, num_val=20, seed=3)
    b = make_imagenet_shapes(tmp_path / 'b', size=32, num_train=40, num_val=20, seed=3)
    c = make_imagenet_shapes(tmp_path / 'c', size=32, num_train=40, num_val=20, seed=4)
    assert _digest(a) == _digest(b) != _digest(c)
    for split, n in (('train', 4), ('val', 2)):
        folders = sorted(p for p in (a / split).iterdir())
        assert len(folders) == len(CLASSES) and all(len(list(f.glob('*.JPEG'))) == n for f in folders)
    ds = CreamImageFolder(str(a), split='val', input_size=32, is_training=False, crop_pct=1.0)
    item = ds[0]
    assert tuple(item['inputs'].shape) == (3, 32, 32) and len(ds) == 20
    assert (a / 'labels.txt').read_text().splitlines()[1].endswith(' ring')


def test_classes_differ_in_outline_and_interior():
    """A disc and a ring (a square and a hollow square) drawn at the same place differ only inside."""
    rng = lambda: np.random.default_rng(0)      # noqa: E731  same position, size, colours and noise
    disc, ring = render(0, 32, rng(), distractors=0, noise=0), render(1, 32, rng(), distractors=0, noise=0)
    inner = np.abs(disc - ring).sum(-1) > 30
    assert inner.any() and inner[[0, -1], :].sum() == 0 and inner[:, [0, -1]].sum() == 0


def test_bad_arguments_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match='size'):
        make_imagenet_shapes(tmp_path / 'x', size=8)
    with pytest.raises(ConfigError, match='num_train'):
        make_imagenet_shapes(tmp_path / 'x', num_train=3)


@pytest.mark.slow
def test_groundtruth_harness_quick(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / 'benchmarks/nas_proxy.py'), 'groundtruth', '--quick', '--out',
                        str(tmp_path)], capture_output=True, text=True, cwd=ROOT,
                       env={'PYTHONPATH': str(ROOT), 'OMP_NUM_THREADS': '1', 'PATH': '/usr/bin:/bin'}, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads((tmp_path / 'groundtruth.json').read_text())
    top1 = np.array(res['top1'])
    assert top1.shape == (2, 4) and ((0 <= top1) & (top1 <= 100)).all()
    lo, hi = res['macs_range']
    assert all(lo <= m <= hi for m in res['macs']) and len(res['tau_seed_vs_seed']) == 1
    assert 'kendall tau seed-vs-seed:' in r.stdout and (tmp_path / 'groundtruth.md').is_file()
