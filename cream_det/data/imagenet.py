"""ImageNet-layout image folders as an mmengine dataset, read and augmented by timm.

Why this shape: retraining uses timm's training recipe (its RandAugment, random-erasing and
eval-crop transforms are the reference implementation of the EfficientNet recipe the paper
follows) but mmengine's Runner (samplers, DDP, checkpoints, logging). So the dataset is timm's
``ImageDataset`` over timm's folder reader, with timm's ``create_transform``, registered in
mmengine's ``DATASETS`` and returning ``dict(inputs=CHW float tensor, label=int)`` samples that
mmengine's ``default_collate`` stacks into the batch :class:`CreamClassifier` consumes.

Expected layout (the usual ImageNet one; put the val images into class folders too)::

    <root>/train/<class>/*.JPEG
    <root>/val/<class>/*.JPEG

Class indices are the class folders of ``<root>/train`` in timm's (natural) sort order, so a
split and the model agree on labels even when a small val split lacks a class.

Unreadable images (truncated or corrupt files): in a *training* split one bad file among a
million should not end a 500-epoch run, so it is skipped with a logged warning naming the file and
the next readable image takes its place (as timm's own dataset does); after ``max_bad_in_a_row``
consecutive failures the split is considered broken and :class:`DatasetError` is raised. An
*evaluation* split raises :class:`DatasetError` naming the file at once: a substitute image would
silently change the reported accuracy. ``on_error`` overrides either default.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Sequence

from PIL import Image
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, ImageDataset, create_transform
from timm.data.readers.img_extensions import get_img_extensions
from timm.data.readers.reader_image_folder import ReaderImageFolder
from timm.utils.misc import natural_key

from ..errors import ConfigError, DatasetError

LAYOUT = '<root>/<split>/<class>/*.JPEG (e.g. <root>/train/n01440764/x.JPEG)'
TRAIN_SPLIT = 'train'

_logger = logging.getLogger(__name__)


def _register(cls: type) -> type:
    """Register in mmengine's DATASETS when mmengine is installed (timm-only users need not have it)."""
    try:
        from mmengine.registry import DATASETS
    except ImportError:  # pragma: no cover
        return cls
    return DATASETS.register_module(module=cls)


def class_folders(split_dir: Path) -> list[str]:
    """Sub-folder names of a split, in timm's natural sort order."""
    return sorted((p.name for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith('.')),
                  key=natural_key)


def scan_classes(root: 'str | os.PathLike', split: str = TRAIN_SPLIT) -> list[str]:
    """The class list of a dataset (the train split's folders), checking the layout on the way."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f'dataset root {root} not found; expected the ImageNet layout {LAYOUT}')
    split_dir = _split_dir(root, split)
    label_dir = root / TRAIN_SPLIT if (root / TRAIN_SPLIT).is_dir() else split_dir
    classes = class_folders(label_dir)
    if not classes:
        exts = get_img_extensions(as_set=True)
        loose = [p.name for p in label_dir.iterdir() if p.suffix.lower() in exts][:3]
        hint = f' (found images directly in it: {", ".join(loose)}; move them into one folder per class)' \
            if loose else ''
        raise DatasetError(f'{label_dir}: no class folders{hint}; expected the ImageNet layout {LAYOUT}')
    if label_dir != split_dir:
        extra = sorted(set(class_folders(split_dir)) - set(classes), key=natural_key)
        if extra:
            raise DatasetError(f'{split_dir}: class folder(s) {", ".join(extra[:5])} do not exist in '
                               f'{label_dir}; the splits must share one set of class folders ({LAYOUT})')
    return classes


def _split_dir(root: Path, split: str) -> Path:
    split_dir = root / split
    if not split_dir.is_dir():
        present = sorted(p.name for p in root.iterdir() if p.is_dir())
        raise DatasetError(f'{split_dir} not found (folders in {root}: {", ".join(present) or "none"}); '
                           f'expected the ImageNet layout {LAYOUT}')
    return split_dir


@_register
class CreamImageFolder(ImageDataset):
    """One split of an ImageNet-layout folder, transformed with timm's ``create_transform``.

    Args:
        root: dataset root holding ``train/`` and ``val/``.
        split: sub-folder to read (``'train'``, ``'val'``, ...).
        input_size: side of the network input; a subnet's arch records the resolution it is
            meant for (``tools/retrain.py --arch`` fills it from there).
        is_training: random (training) or deterministic (eval) transforms; default: ``split == 'train'``.
        auto_augment: timm policy string such as ``'rand-m9-mstd0.5'`` (the authors' recipe), or None.
        interpolation: resize interpolation; ``'random'`` picks one per image while training.
        crop_pct: eval center-crop fraction (resize to ``input_size / crop_pct`` first).
        scale, ratio, hflip, color_jitter: timm's RandomResizedCrop / flip / jitter settings.
        re_prob, re_mode: timm's random erasing.
        on_error: ``'skip'`` (warn, substitute the next readable image) or ``'raise'``;
            default ``'skip'`` when training, ``'raise'`` otherwise (see the module docstring).
        max_bad_in_a_row: consecutive unreadable images after which skipping gives up.
        transform_kwargs: any further ``timm.data.create_transform`` argument.
    """

    def __init__(self, root: 'str | os.PathLike', split: str = 'train', input_size: int | None = None,
                 is_training: bool | None = None, *, auto_augment: str | None = None,
                 interpolation: str = 'bicubic', crop_pct: float = 0.875,
                 mean: Sequence[float] = IMAGENET_DEFAULT_MEAN, std: Sequence[float] = IMAGENET_DEFAULT_STD,
                 scale: Sequence[float] | None = None, ratio: Sequence[float] | None = None,
                 hflip: float = 0.5, color_jitter: float = 0.4, re_prob: float = 0.0, re_mode: str = 'pixel',
                 on_error: str | None = None, max_bad_in_a_row: int = 10,
                 transform_kwargs: dict[str, Any] | None = None) -> None:
        if input_size is None:
            raise ConfigError(f'CreamImageFolder({split!r}): input_size is not set; set it to the arch\'s '
                              f'resolution (tools/retrain.py --arch fills it in)')
        is_training = split == TRAIN_SPLIT if is_training is None else bool(is_training)
        on_error = on_error or ('skip' if is_training else 'raise')
        if on_error not in ('skip', 'raise'):
            raise ConfigError(f"CreamImageFolder on_error={on_error!r}: use 'skip' or 'raise'")
        self.root, self.split = Path(root), split
        self.classes = scan_classes(self.root, split)
        split_dir = self.root / split
        try:
            reader = ReaderImageFolder(str(split_dir), class_map={c: i for i, c in enumerate(self.classes)})
        except RuntimeError:        # timm: "Found 0 images in subfolders of ..."
            raise DatasetError(f'{split_dir}: no images ({", ".join(get_img_extensions())}) in its class '
                               f'folders; expected the ImageNet layout {LAYOUT}') from None
        self.transform_cfg = dict(input_size=int(input_size), is_training=is_training, auto_augment=auto_augment,
                                  interpolation=interpolation, crop_pct=crop_pct, mean=tuple(mean), std=tuple(std),
                                  scale=tuple(scale) if scale else None, ratio=tuple(ratio) if ratio else None,
                                  hflip=hflip, color_jitter=color_jitter, re_prob=re_prob, re_mode=re_mode,
                                  **(transform_kwargs or {}))
        super().__init__(str(split_dir), reader=reader, transform=create_transform(**self.transform_cfg))
        self.on_error = on_error
        self.max_bad_in_a_row = max(1, int(max_bad_in_a_row))

    @property
    def metainfo(self) -> dict[str, Any]:
        """Read by mmengine (evaluator ``dataset_meta``, checkpoint ``meta.dataset_meta``)."""
        return dict(classes=tuple(self.classes), split=self.split)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def _load(self, index: int) -> tuple[Image.Image, int]:
        fp, target = self.reader[index]
        with fp:
            img = Image.open(fp)
            return img.convert('RGB'), target      # convert decodes: truncated data fails here

    def __getitem__(self, index: int) -> dict[str, Any]:
        bad: list[str] = []
        for _ in range(self.max_bad_in_a_row):
            try:
                img, target = self._load(index)
                break
            except OSError as e:            # PIL's UnidentifiedImageError and "image file is truncated"
                path = self.reader.filename(index, absolute=True)
                if self.on_error == 'raise':
                    raise DatasetError(f'{path}: unreadable image ({e}); replace or delete the file '
                                       f'(training splits skip such files: on_error=\'skip\')') from None
                _logger.warning('skipping unreadable image %s (%s); using the next image instead', path, e)
                bad.append(path)
                index = (index + 1) % len(self.reader)
        else:
            raise DatasetError(f'{len(bad)} unreadable images in a row in {self.root / self.split} '
                               f'(first: {bad[0]}); the split looks damaged, check the files')
        return dict(inputs=self.transform(img), label=int(target))


__all__ = ['CreamImageFolder', 'LAYOUT', 'class_folders', 'scan_classes']
