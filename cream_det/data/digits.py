"""Embedded demo datasets built from scikit-learn's bundled handwritten digits.

Why: the pipeline (NAS supernet training on ImageNet, retraining, RetinaNet on COCO) must be
runnable end to end on a machine with neither dataset and no network. ``load_digits`` ships 1797
real 8x8 scans inside scikit-learn, so we turn them into files in the *real* on-disk formats -- an
ImageNet folder tree of JPEGs and COCO json + JPEGs -- which exercise exactly the loaders used for
the real data. Every random choice comes from ``seed`` so the same arguments give byte-identical
files.
"""
import json
import os
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import ConfigError
from ._atomic import atomic_dir

NUM_CLASSES = 10
INK_THRESHOLD = 0.25       # opacity from which an upsampled pixel counts as ink (and gets a box)
MAX_IOU = 0.05             # digits on one canvas may touch but not hide each other
MAX_DIGITS_PER_CANVAS = 4
MAX_TRIES = 30             # placements tried per digit before it is left out
TRAIN_POOL_FRACTION = 0.8  # share of the scans that train canvases draw from (val gets the rest)
CATEGORIES = [{'id': d + 1, 'name': str(d), 'supercategory': 'digit'} for d in range(NUM_CLASSES)]


def wnid(digit: int) -> str:
    """ImageNet-like folder name: fixed width so that sorting the folders sorts the classes."""
    return f'n{digit:08d}'


def make_imagenet_digits(out_dir: str | os.PathLike, *, size: int = 64, seed: int = 0,
                         val_fraction: float = 0.2, max_per_class: int | None = None,
                         force: bool = False) -> Path:
    """Write ``out_dir/{train,val}/<wnid>/*.JPEG`` plus ``classes.json`` and ``labels.txt``.

    The split is stratified so both splits see every class even with a small ``max_per_class``.
    Each image's colours depend only on ``seed`` and the scan's index, so a subset made with
    ``max_per_class`` holds the same bytes as the full set for the images they share.
    """
    require(isinstance(size, int) and size >= 8, f'size must be an int >= 8, got {size!r}')
    require(0.0 < val_fraction < 1.0, f'val_fraction must be in (0, 1), got {val_fraction!r}')
    require(max_per_class is None or (isinstance(max_per_class, int) and max_per_class >= 2),
             f'max_per_class must be None or an int >= 2, got {max_per_class!r}')
    require_seed(seed)
    scans, labels = _load_digits()
    splits = _stratified_split(labels, val_fraction, max_per_class, np.random.default_rng(seed))
    with atomic_dir(out_dir, force) as tmp:
        for split, indices in splits.items():
            for i in indices:
                folder = tmp / split / wnid(labels[i])
                folder.mkdir(parents=True, exist_ok=True)
                image = _render_class_image(scans[i], size, np.random.default_rng((seed, int(i))))
                save_jpeg(image, folder / f'{wnid(labels[i])}_{i:05d}.JPEG')
        _write_class_index(tmp)
    return Path(out_dir)


def make_coco_digits(out_dir: str | os.PathLike, *, num_train: int = 200, num_val: int = 50,
                     canvas_size: int = 128, seed: int = 0, force: bool = False) -> Path:
    """Write ``out_dir/annotations/instances_{train,val}.json``, JPEGs in ``out_dir/{train,val}``.

    Train and val canvases paste digits from disjoint sets of scans, so val measures detection
    of handwriting the model has not seen rather than memorised strokes.
    """
    for name, value in (('num_train', num_train), ('num_val', num_val)):
        require(isinstance(value, int) and value >= 1,
                 f'{name} must be an int >= 1, got {value!r}')
    require(isinstance(canvas_size, int) and canvas_size >= 32,
             f'canvas_size must be an int >= 32, got {canvas_size!r}')
    require_seed(seed)
    scans, labels = _load_digits()
    train_pool, val_pool = _detection_pools(len(labels), seed)
    plan = [('train', num_train, train_pool), ('val', num_val, val_pool)]
    with atomic_dir(out_dir, force) as tmp:
        (tmp / 'annotations').mkdir()
        next_ids = [1, 1]  # image id, annotation id: unique across both splits, like real COCO
        for split_no, (split, count, pool) in enumerate(plan):
            rng = np.random.default_rng((seed, split_no))
            (tmp / split).mkdir()
            images, annotations = [], []
            for _ in range(count):
                canvas, placed = _render_canvas(rng, scans, labels, pool, canvas_size)
                image_id = next_ids[0]
                next_ids[0] += 1
                file_name = f'{image_id:012d}.jpg'
                save_jpeg(canvas, tmp / split / file_name)
                images.append({'id': image_id, 'file_name': file_name, 'height': canvas_size,
                               'width': canvas_size, 'license': 1, 'date_captured': ''})
                for box, label in placed:
                    annotations.append(_annotation(next_ids[1], image_id, box, label))
                    next_ids[1] += 1
            document = _coco_document(split, seed, images, annotations)
            with open(tmp / 'annotations' / f'instances_{split}.json', 'w') as f:
                json.dump(document, f, separators=(',', ':'))
    return Path(out_dir)


# ---- shared image helpers ------------------------------------------------------------------------

def _load_digits() -> tuple[np.ndarray, np.ndarray]:
    """Scans as uint8 0..255 (ink bright); imported lazily because sklearn is slow to import."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    scans = np.rint(digits.images * (255.0 / 16.0)).astype(np.uint8)
    return scans, digits.target.astype(np.int64)


def _digit_alpha(scan: np.ndarray, size: int) -> np.ndarray:
    """Opacity in [0, 1]; bicubic turns the 8x8 blocks into round strokes at any size."""
    image = Image.fromarray(scan).resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(image, dtype=np.float32) / 255.0


def _blend(canvas: np.ndarray, alpha: np.ndarray, colour: np.ndarray, x: int, y: int) -> None:
    """Alpha-composite a flat colour into ``canvas`` (float HxWx3) in place at (x, y)."""
    h, w = alpha.shape
    region = canvas[y:y + h, x:x + w]
    region += alpha[..., None] * (colour[None, None, :] - region)


def save_jpeg(image: np.ndarray, path: Path) -> None:
    """Fixed quality and no metadata, so the bytes depend only on the pixels."""
    pixels = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path, format='JPEG', quality=92)


def require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def require_seed(seed: int) -> None:
    require(isinstance(seed, int) and seed >= 0, f'seed must be an int >= 0, got {seed!r}')


# ---- classification ------------------------------------------------------------------------------

def _stratified_split(labels: np.ndarray, val_fraction: float, max_per_class: int | None,
                      rng: np.random.Generator) -> dict[str, list[int]]:
    """Per class: shuffle, cap at ``max_per_class``, keep at least one image in each split."""
    splits: dict[str, list[int]] = {'train': [], 'val': []}
    for digit in range(NUM_CLASSES):
        indices = rng.permutation(np.flatnonzero(labels == digit))[:max_per_class]
        n_val = min(len(indices) - 1, max(1, round(len(indices) * val_fraction)))
        splits['val'].extend(sorted(int(i) for i in indices[:n_val]))
        splits['train'].extend(sorted(int(i) for i in indices[n_val:]))
    return splits


def _render_class_image(scan: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Tinted ink on a dark tinted background, so the three RGB channels carry different values."""
    background = rng.uniform(0, 40, size=3)
    canvas = np.broadcast_to(background, (size, size, 3)).astype(np.float32)
    _blend(canvas, _digit_alpha(scan, size), rng.uniform(170, 255, size=3), 0, 0)
    return canvas


def _write_class_index(root: Path) -> None:
    """Both a json map and an ImageNet-style ``labels.txt`` (``<wnid> <name>`` per line)."""
    names = {wnid(d): str(d) for d in range(NUM_CLASSES)}
    (root / 'classes.json').write_text(json.dumps(names, indent=2) + '\n')
    (root / 'labels.txt').write_text(''.join(f'{k} {v}\n' for k, v in names.items()))


# ---- detection -----------------------------------------------------------------------------------

def _ink_patch(scan: np.ndarray, size: int) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """Upsampled opacity with sub-threshold haze zeroed, and the ink's (x, y, w, h) in the patch.

    Zeroing the haze makes the box exact: the paste changes no pixel outside its box.
    """
    alpha = _digit_alpha(scan, size)
    alpha[alpha < INK_THRESHOLD] = 0.0
    rows, cols = np.flatnonzero(alpha.any(axis=1)), np.flatnonzero(alpha.any(axis=0))
    if len(rows) == 0:
        return alpha, (0, 0, 0, 0)
    x, y = int(cols[0]), int(rows[0])
    return alpha, (x, y, int(cols[-1]) + 1 - x, int(rows[-1]) + 1 - y)


def _detection_pools(num_scans: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint scan indices for train and val canvases."""
    perm = np.random.default_rng(seed).permutation(num_scans)
    cut = int(num_scans * TRAIN_POOL_FRACTION)
    return np.sort(perm[:cut]), np.sort(perm[cut:])


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """IoU of two COCO ``(x, y, w, h)`` boxes."""
    iw = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Dark tinted noise: a detector must find ink, not just any non-black pixel."""
    base = rng.uniform(5, 45, size=3)
    noise = rng.normal(0.0, 6.0, size=(size, size, 3))
    return np.clip(base + noise, 0, 70).astype(np.float32)


Placed = list[tuple[tuple[float, float, float, float], int]]  # (COCO box, digit) per paste


def _render_canvas(rng: np.random.Generator, scans: np.ndarray, labels: np.ndarray,
                   pool: np.ndarray, canvas_size: int) -> tuple[np.ndarray, Placed]:
    """Paste 1..4 digits at random scales; placements overlapping a placed box are retried."""
    canvas = _background(rng, canvas_size)
    lo, hi = max(8, canvas_size * 20 // 128), max(8, canvas_size * 56 // 128)
    placed: Placed = []
    for _ in range(int(rng.integers(1, MAX_DIGITS_PER_CANVAS + 1))):
        index = int(pool[rng.integers(len(pool))])
        colour = rng.uniform(160, 255, size=3)
        for _try in range(MAX_TRIES):
            scale = int(rng.integers(lo, hi + 1))
            x, y = (int(v) for v in rng.integers(0, canvas_size - scale + 1, size=2))
            alpha, (bx, by, bw, bh) = _ink_patch(scans[index], scale)
            box = (float(x + bx), float(y + by), float(bw), float(bh))
            if bw > 0 and all(_iou(box, other) <= MAX_IOU for other, _ in placed):
                _blend(canvas, alpha, colour, x, y)
                placed.append((box, int(labels[index])))
                break
    return canvas, placed


def _annotation(ann_id: int, image_id: int, box: tuple, digit: int) -> dict:
    return {'id': ann_id, 'image_id': image_id, 'category_id': digit + 1, 'bbox': list(box),
            'area': box[2] * box[3], 'iscrowd': 0}


def _coco_document(split: str, seed: int, images: list, annotations: list) -> dict:
    """The top-level keys of a real COCO instances file; no timestamps, to stay reproducible."""
    info = {'description': f'cream_det handwritten-digit detection demo ({split}, seed {seed})',
            'url': 'https://scikit-learn.org/stable/datasets/toy_dataset.html#digits-dataset',
            'version': '1.0', 'year': 2024, 'contributor': 'cream_det', 'date_created': ''}
    licenses = [{'id': 1, 'name': 'CC BY 4.0 (UCI optical recognition of handwritten digits)',
                 'url': 'https://creativecommons.org/licenses/by/4.0/'}]
    return {'info': info, 'licenses': licenses, 'images': images, 'annotations': annotations,
            'categories': CATEGORIES}
