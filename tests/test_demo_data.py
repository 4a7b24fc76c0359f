"""Embedded demo data: layouts, determinism, exact boxes, the COCO validator, safe writing, CLI."""
import copy
import hashlib
import json
import subprocess
import sys
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cream_det.data import digits, make_coco_digits, make_imagenet_digits, validate_coco
from cream_det.errors import ConfigError, CreamDetError, DatasetError

ROOT = Path(__file__).resolve().parents[1]
WNIDS = [f'n{d:08d}' for d in range(10)]


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob('*')) if p.is_file()}


def _load(root: Path, split: str) -> dict:
    return json.loads((root / 'annotations' / f'instances_{split}.json').read_text())


# ---- ImageNet layout -----------------------------------------------------------------------------

def test_imagenet_layout_and_counts(imagenet_digits):
    for split, per_class in (('train', 24), ('val', 6)):
        folders = sorted(p.name for p in (imagenet_digits / split).iterdir())
        assert folders == WNIDS
        for wnid in WNIDS:
            files = list((imagenet_digits / split / wnid).glob('*.JPEG'))
            assert len(files) == per_class
            assert all(f.name.startswith(wnid + '_') for f in files)
    assert json.loads((imagenet_digits / 'classes.json').read_text()) == {
        w: str(d) for d, w in enumerate(WNIDS)}
    assert (imagenet_digits / 'labels.txt').read_text().splitlines()[3] == 'n00000003 3'


def test_imagenet_images_are_rgb_tinted(imagenet_digits):
    path = next((imagenet_digits / 'train' / WNIDS[5]).glob('*.JPEG'))
    with Image.open(path) as image:
        assert image.format == 'JPEG' and image.mode == 'RGB' and image.size == (64, 64)
        pixels = np.asarray(image, dtype=np.int32)
    assert pixels.max() > 150, 'the digit ink should be bright'
    assert np.abs(pixels[..., 0] - pixels[..., 1]).max() > 10, 'channels should differ (tint)'


def test_imagenet_split_is_stratified_and_disjoint():
    _, labels = digits._load_digits()
    split = digits._stratified_split(labels, 0.2, None, np.random.default_rng(0))
    assert not set(split['train']) & set(split['val'])
    assert len(split['train']) + len(split['val']) == len(labels) == 1797
    for d in range(10):
        n_val = sum(labels[i] == d for i in split['val'])
        assert abs(n_val - 0.2 * (labels == d).sum()) <= 1


# ---- COCO layout and boxes -----------------------------------------------------------------------

def test_coco_layout_and_keys(coco_digits):
    image_ids, ann_ids = set(), set()
    for split, count in (('train', 40), ('val', 16)):
        data = _load(coco_digits, split)
        assert set(data) == {'info', 'licenses', 'images', 'annotations', 'categories'}
        assert len(data['images']) == count
        assert data['categories'] == [{'id': d + 1, 'name': str(d), 'supercategory': 'digit'}
                                      for d in range(10)]
        for img in data['images']:
            assert (img['height'], img['width']) == (128, 128)
            with Image.open(coco_digits / split / img['file_name']) as image:
                assert image.format == 'JPEG' and image.mode == 'RGB' and image.size == (128, 128)
        per_image = {}
        for ann in data['annotations']:
            per_image[ann['image_id']] = per_image.get(ann['image_id'], 0) + 1
        assert set(per_image) == {img['id'] for img in data['images']}  # no empty canvases
        assert max(per_image.values()) <= 4
        new_image_ids = {img['id'] for img in data['images']}
        new_ann_ids = {ann['id'] for ann in data['annotations']}
        assert len(new_image_ids) == count and len(new_ann_ids) == len(data['annotations'])
        assert not (new_image_ids & image_ids) and not (new_ann_ids & ann_ids)
        image_ids |= new_image_ids
        ann_ids |= new_ann_ids


def test_coco_boxes_inside_and_non_overlapping(coco_digits):
    for split in ('train', 'val'):
        data = _load(coco_digits, split)
        by_image: dict[int, list] = {}
        for ann in data['annotations']:
            x, y, w, h = ann['bbox']
            assert all(isinstance(v, float) for v in ann['bbox'])
            assert w > 0 and h > 0 and x >= 0 and y >= 0 and x + w <= 128 and y + h <= 128
            assert ann['area'] == w * h and ann['iscrowd'] == 0
            assert 1 <= ann['category_id'] <= 10
            by_image.setdefault(ann['image_id'], []).append(ann['bbox'])
        for boxes in by_image.values():
            for a, b in combinations(boxes, 2):
                assert digits._iou(a, b) <= digits.MAX_IOU


def test_coco_boxes_contain_ink_on_disk(coco_digits):
    """On the JPEGs: every box holds pixels far brighter than the dark background can be."""
    data = _load(coco_digits, 'val')
    files = {img['id']: img['file_name'] for img in data['images']}
    for ann in data['annotations']:
        with Image.open(coco_digits / 'val' / files[ann['image_id']]) as image:
            grey = np.asarray(image.convert('L'), dtype=np.int32)
        x, y, w, h = (int(v) for v in ann['bbox'])
        assert grey[y:y + h, x:x + w].max() > 110


@pytest.mark.parametrize('scale', [8, 20, 37, 56])
def test_ink_patch_box_is_tight(scale):
    """The box is exactly the bounding box of the pixels the paste changes."""
    scans, _ = digits._load_digits()
    for index in (0, 7, 1000, 1796):
        alpha, (bx, by, bw, bh) = digits._ink_patch(scans[index], scale)
        canvas = np.zeros((scale + 10, scale + 10, 3), dtype=np.float32)
        digits._blend(canvas, alpha, np.array([200.0, 180.0, 255.0]), 5, 3)
        ys, xs = np.nonzero(canvas.any(axis=2))
        assert (xs.min(), ys.min()) == (5 + bx, 3 + by)
        assert (xs.max() + 1, ys.max() + 1) == (5 + bx + bw, 3 + by + bh)
        assert alpha[alpha > 0].min() >= digits.INK_THRESHOLD


def test_rendered_canvas_boxes_are_tight():
    """In memory (before JPEG): all changed pixels lie in boxes and each box edge has ink."""
    scans, labels = digits._load_digits()
    pool = np.arange(len(labels))
    rng = np.random.default_rng(123)
    for _ in range(20):
        background = digits._background(copy.deepcopy(rng), 128)
        canvas, placed = digits._render_canvas(rng, scans, labels, pool, 128)
        ink = np.any(canvas != background, axis=2)
        covered = np.zeros_like(ink)
        for (x, y, w, h), _label in placed:
            x, y, w, h = int(x), int(y), int(w), int(h)
            covered[y:y + h, x:x + w] = True
            assert ink[y, x:x + w].any() and ink[y + h - 1, x:x + w].any()
            assert ink[y:y + h, x].any() and ink[y:y + h, x + w - 1].any()
        assert not (ink & ~covered).any()


def test_train_and_val_draw_from_disjoint_scans(tmp_path, monkeypatch):
    pools = []
    real = digits._render_canvas

    def spy(rng, scans, labels, pool, canvas_size):
        pools.append(frozenset(int(i) for i in pool))
        return real(rng, scans, labels, pool, canvas_size)

    monkeypatch.setattr(digits, '_render_canvas', spy)
    make_coco_digits(tmp_path / 'coco', num_train=2, num_val=2)
    train, val = pools[0], pools[-1]
    assert not train & val and len(train | val) == 1797


def test_pycocotools_loads(coco_digits):
    from pycocotools.coco import COCO
    for split, count in (('train', 40), ('val', 16)):
        coco = COCO(str(coco_digits / 'annotations' / f'instances_{split}.json'))
        assert len(coco.getImgIds()) == count and coco.getCatIds() == list(range(1, 11))
        assert len(coco.getAnnIds()) >= count


# ---- determinism ---------------------------------------------------------------------------------

def test_same_seed_gives_identical_bytes(tmp_path):
    for name in ('a', 'b'):
        make_imagenet_digits(tmp_path / name / 'imagenet', max_per_class=4, size=32, seed=3)
        make_coco_digits(tmp_path / name / 'coco', num_train=5, num_val=3, seed=3)
    first, second = _hashes(tmp_path / 'a'), _hashes(tmp_path / 'b')
    assert len(first) == (40 + 2) + (8 + 2) and first == second
    make_coco_digits(tmp_path / 'c', num_train=5, num_val=3, seed=4)
    assert _hashes(tmp_path / 'c') != _hashes(tmp_path / 'a' / 'coco')


# ---- validator -----------------------------------------------------------------------------------

def _good_doc() -> dict:
    return {
        'info': {}, 'licenses': [],
        'images': [{'id': 1, 'file_name': 'a.jpg', 'width': 20, 'height': 10},
                   {'id': 2, 'file_name': 'b.jpg', 'width': 20, 'height': 10}],
        'annotations': [{'id': 1, 'image_id': 1, 'category_id': 1, 'bbox': [1.0, 1.0, 5.0, 5.0],
                         'area': 25.0, 'iscrowd': 0},
                        {'id': 2, 'image_id': 2, 'category_id': 2, 'bbox': [0, 0, 20, 10],
                         'area': 200.0, 'iscrowd': 0}],
        'categories': [{'id': 1, 'name': 'cat'}, {'id': 2, 'name': 'dog'}],
    }


def test_validator_accepts_generated_and_minimal(coco_digits, tmp_path):
    for split, count in (('train', 40), ('val', 16)):
        summary = validate_coco(coco_digits / 'annotations' / f'instances_{split}.json',
                                coco_digits / split)
        assert summary['num_images'] == count and summary['num_categories'] == 10
        assert summary['categories'] == [str(d) for d in range(10)]
        assert summary['images_without_annotations'] == 0
    ann_file = tmp_path / 'ok.json'
    ann_file.write_text(json.dumps(_good_doc()))
    assert validate_coco(ann_file)['num_annotations'] == 2


def _break(mutate):
    doc = _good_doc()
    mutate(doc)
    return doc


BAD_DOCS = {
    'missing key': (_break(lambda d: d.pop('annotations')), 'missing top-level key'),
    'duplicate image id': (_break(lambda d: d['images'][1].update(id=1)), 'duplicate image id'),
    'duplicate annotation id': (_break(lambda d: d['annotations'][1].update(id=1)),
                                'duplicate annotation id'),
    'unknown image': (_break(lambda d: d['annotations'][0].update(image_id=9)), 'unknown image'),
    'unknown category': (_break(lambda d: d['annotations'][0].update(category_id=7)),
                         'unknown category'),
    'zero width': (_break(lambda d: d['annotations'][0].update(bbox=[1, 1, 0, 5])),
                   'non-positive size'),
    'negative height': (_break(lambda d: d['annotations'][0].update(bbox=[1, 1, 3, -2])),
                        'non-positive size'),
    'outside right': (_break(lambda d: d['annotations'][0].update(bbox=[15, 1, 8, 5])),
                      'outside image'),
    'outside top': (_break(lambda d: d['annotations'][0].update(bbox=[1, -3, 4, 4])),
                    'outside image'),
    'duplicate category id': (_break(lambda d: d['categories'][1].update(id=1)),
                              'duplicate category id'),
    'duplicate category name': (_break(lambda d: d['categories'][1].update(name='cat')),
                                'duplicate category name'),
    'not an object': ([1, 2], 'JSON object'),
}


@pytest.mark.parametrize('case', sorted(BAD_DOCS))
def test_validator_rejects(case, tmp_path):
    doc, expected = BAD_DOCS[case]
    ann_file = tmp_path / 'broken_instances.json'
    ann_file.write_text(json.dumps(doc))
    with pytest.raises(DatasetError, match='broken_instances.json') as info:
        validate_coco(ann_file)
    assert expected in str(info.value)


def test_validator_rejects_missing_and_non_json(tmp_path):
    with pytest.raises(DatasetError, match='nope.json.*not found'):
        validate_coco(tmp_path / 'nope.json')
    garbage = tmp_path / 'garbage.json'
    garbage.write_text('{"images": [')
    with pytest.raises(DatasetError, match='garbage.json.*not valid JSON'):
        validate_coco(garbage)


def test_validator_rejects_missing_image_file(tmp_path):
    ann_file = tmp_path / 'instances.json'
    ann_file.write_text(json.dumps(_good_doc()))
    Image.new('RGB', (20, 10)).save(tmp_path / 'a.jpg')
    with pytest.raises(DatasetError, match=r'instances.json.*b\.jpg.*missing'):
        validate_coco(ann_file, tmp_path)
    Image.new('RGB', (20, 10)).save(tmp_path / 'b.jpg')
    assert validate_coco(ann_file, tmp_path)['num_images'] == 2


# ---- safe writing --------------------------------------------------------------------------------

def test_non_empty_dir_needs_force(tmp_path):
    out = tmp_path / 'coco'
    out.mkdir()
    (out / 'keep.txt').write_text('user data')
    with pytest.raises(DatasetError, match=r'coco.*not empty.*--force'):
        make_coco_digits(out, num_train=1, num_val=1)
    with pytest.raises(DatasetError, match='--force'):
        make_imagenet_digits(out, max_per_class=2)
    assert (out / 'keep.txt').read_text() == 'user data'
    make_coco_digits(out, num_train=1, num_val=1, force=True)
    assert not (out / 'keep.txt').exists() and (out / 'annotations').is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ['coco']  # no scratch dirs left


def test_empty_dir_is_fine(tmp_path):
    (tmp_path / 'imagenet').mkdir()
    make_imagenet_digits(tmp_path / 'imagenet', max_per_class=2, size=16)
    assert (tmp_path / 'imagenet' / 'classes.json').is_file()


def test_unwritable_path_is_dataset_error(tmp_path):
    blocker = tmp_path / 'a_file'
    blocker.write_text('')
    with pytest.raises(DatasetError, match='a_file'):
        make_coco_digits(blocker / 'coco', num_train=1, num_val=1)
    with pytest.raises(DatasetError, match='a_file'):
        make_imagenet_digits(blocker / 'sub' / 'imagenet', max_per_class=2)
    with pytest.raises(DatasetError, match='not a directory'):
        make_imagenet_digits(blocker, max_per_class=2, force=True)


def test_interrupted_run_leaves_old_dataset_and_no_partial(tmp_path, monkeypatch):
    out = tmp_path / 'coco'
    make_coco_digits(out, num_train=2, num_val=1)
    before = _hashes(out)
    calls = []
    real = digits.save_jpeg

    def interrupt_on_third(image, path):
        calls.append(path)
        if len(calls) == 3:
            raise KeyboardInterrupt
        real(image, path)

    monkeypatch.setattr(digits, 'save_jpeg', interrupt_on_third)
    with pytest.raises(KeyboardInterrupt):
        make_coco_digits(out, num_train=5, num_val=2, seed=1, force=True)
    assert _hashes(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ['coco']


def test_bad_parameters_are_user_errors(tmp_path):
    with pytest.raises(ConfigError, match='size'):
        make_imagenet_digits(tmp_path / 'x', size=4)
    with pytest.raises(ConfigError, match='num_train'):
        make_coco_digits(tmp_path / 'y', num_train=0)
    assert not (tmp_path / 'x').exists() and not (tmp_path / 'y').exists()


# ---- CLI -----------------------------------------------------------------------------------------

def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, 'tools/make_demo_data.py', *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def test_cli_writes_both(tmp_path):
    result = _cli(str(tmp_path / 'demo'), '--num-train', '3', '--num-val', '2',
                  '--max-per-class', '3', '--size', '16', '--seed', '5')
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith('imagenet: 10 classes, 20 train / 10 val images')
    assert lines[1].startswith('coco: 10 categories, 3 train images') and '2 val images' in lines[1]
    assert (tmp_path / 'demo' / 'imagenet' / 'val' / WNIDS[9]).is_dir()
    validate_coco(tmp_path / 'demo' / 'coco' / 'annotations' / 'instances_val.json',
                  tmp_path / 'demo' / 'coco' / 'val')


def test_cli_non_empty_dir_exits_2_without_traceback(tmp_path):
    (tmp_path / 'coco').mkdir()
    (tmp_path / 'coco' / 'old.txt').write_text('x')
    result = _cli(str(tmp_path / 'coco'), '--kind', 'coco', '--num-train', '1', '--num-val', '1')
    assert result.returncode == 2
    assert result.stderr.startswith('error: ') and '--force' in result.stderr
    assert str(tmp_path / 'coco') in result.stderr and 'Traceback' not in result.stderr


def test_errors_share_the_cli_base_class():
    assert issubclass(DatasetError, CreamDetError) and issubclass(ConfigError, CreamDetError)
