"""Validate a COCO instances file before training on it.

Why: mmdet and pycocotools accept many malformed files silently (a duplicate id overwrites an
image, a box outside the image is clipped, an unknown category is dropped) and the damage shows up
hours later as a low mAP. Checking up front turns each of those into one clear error that names
the file and the offending entry.
"""
import json
import os
from pathlib import Path

from ..errors import DatasetError

REQUIRED_KEYS = ('images', 'annotations', 'categories')
BOX_TOLERANCE = 0.5  # px a box may poke past the border: float rounding in converted datasets


def validate_coco(ann_file: str | os.PathLike, image_dir: str | os.PathLike | None = None) -> dict:
    """Check ``ann_file`` (and, with ``image_dir``, that every image exists); return a summary.

    Raises :class:`DatasetError` on the first problem found.
    """
    path = Path(ann_file)
    data = _load(path)
    categories = _check_categories(path, data['categories'])
    images = _check_images(path, data['images'])
    per_image = _check_annotations(path, data['annotations'], images, categories)
    if image_dir is not None:
        _check_files(path, Path(image_dir), images)
    return {
        'file': str(path),
        'num_images': len(images),
        'num_annotations': len(data['annotations']),
        'num_categories': len(categories),
        'categories': [categories[k] for k in sorted(categories)],
        'images_without_annotations': sum(1 for i in images if per_image.get(i, 0) == 0),
    }


def _fail(path: Path, problem: str) -> None:
    raise DatasetError(f'{path}: {problem}')


def _load(path: Path) -> dict:
    if not path.is_file():
        _fail(path, 'annotation file not found')
    try:
        data = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f'{path}: not valid JSON ({exc})') from None
    if not isinstance(data, dict):
        _fail(path, f'top level must be a JSON object, got {type(data).__name__}')
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        _fail(path, f'missing top-level key(s) {missing}; '
                    f'a COCO instances file needs {list(REQUIRED_KEYS)}')
    for key in REQUIRED_KEYS:
        if not isinstance(data[key], list):
            _fail(path, f'"{key}" must be a list, got {type(data[key]).__name__}')
    return data


def _entry(path: Path, section: str, n: int, entry: object, fields: tuple[str, ...]) -> dict:
    """Return ``entry`` if it is an object with ``fields``; the index says where the bad one is."""
    if not isinstance(entry, dict):
        _fail(path, f'{section}[{n}] must be an object')
    missing = [f for f in fields if f not in entry]
    if missing:
        _fail(path, f'{section}[{n}] lacks field(s) {missing}')
    return entry


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_categories(path: Path, entries: list) -> dict[int, str]:
    categories: dict[int, str] = {}
    for n, entry in enumerate(entries):
        cat = _entry(path, 'categories', n, entry, ('id', 'name'))
        if not _is_int(cat['id']):
            _fail(path, f'categories[{n}] id {cat["id"]!r} is not an integer')
        if cat['id'] in categories:
            _fail(path, f'duplicate category id {cat["id"]}')
        if cat['name'] in categories.values():
            _fail(path, f'duplicate category name {cat["name"]!r}')
        categories[cat['id']] = cat['name']
    if not categories:
        _fail(path, 'no categories')
    return categories


def _check_images(path: Path, entries: list) -> dict[int, dict]:
    images: dict[int, dict] = {}
    for n, entry in enumerate(entries):
        img = _entry(path, 'images', n, entry, ('id', 'file_name', 'width', 'height'))
        if not _is_int(img['id']):
            _fail(path, f'images[{n}] id {img["id"]!r} is not an integer')
        if img['id'] in images:
            _fail(path, f'duplicate image id {img["id"]}')
        if not all(_is_int(img[k]) and img[k] > 0 for k in ('width', 'height')):
            _fail(path, f'image {img["id"]} has invalid size {img["width"]!r}x{img["height"]!r}')
        images[img['id']] = img
    return images


def _check_annotations(path: Path, entries: list, images: dict[int, dict],
                       categories: dict[int, str]) -> dict[int, int]:
    """Return the number of annotations per image id."""
    seen: set[int] = set()
    per_image: dict[int, int] = {}
    for n, entry in enumerate(entries):
        ann = _entry(path, 'annotations', n, entry, ('id', 'image_id', 'category_id', 'bbox'))
        if not _is_int(ann['id']):
            _fail(path, f'annotations[{n}] id {ann["id"]!r} is not an integer')
        if ann['id'] in seen:
            _fail(path, f'duplicate annotation id {ann["id"]}')
        seen.add(ann['id'])
        if not _is_int(ann['image_id']) or ann['image_id'] not in images:
            _fail(path, f'annotation {ann["id"]} refers to unknown image id {ann["image_id"]}')
        if not _is_int(ann['category_id']) or ann['category_id'] not in categories:
            _fail(path, f'annotation {ann["id"]} refers to unknown category id '
                        f'{ann["category_id"]}')
        _check_box(path, ann, images[ann['image_id']])
        per_image[ann['image_id']] = per_image.get(ann['image_id'], 0) + 1
    return per_image


def _check_box(path: Path, ann: dict, image: dict) -> None:
    box = ann['bbox']
    if not (isinstance(box, list) and len(box) == 4
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box)):
        _fail(path, f'annotation {ann["id"]} bbox {box!r} is not [x, y, w, h] numbers')
    x, y, w, h = box
    if w <= 0 or h <= 0:
        _fail(path, f'annotation {ann["id"]} bbox {box} has non-positive size')
    tol = BOX_TOLERANCE
    if x < -tol or y < -tol or x + w > image['width'] + tol or y + h > image['height'] + tol:
        _fail(path, f'annotation {ann["id"]} bbox {box} lies outside image {image["id"]} '
                    f'({image["width"]}x{image["height"]})')


def _check_files(path: Path, image_dir: Path, images: dict[int, dict]) -> None:
    if not image_dir.is_dir():
        _fail(path, f'image directory {image_dir} not found')
    for img in images.values():
        if not (image_dir / img['file_name']).is_file():
            _fail(path, f'image file {image_dir / img["file_name"]} (image id {img["id"]}) '
                        'is missing')
