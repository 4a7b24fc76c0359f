"""One entry point for every stage: search, retraining and detection are mmengine configs.

``tools/train.py``, ``tools/search.py``, ``tools/retrain.py`` and ``tools/test.py`` are thin
wrappers around :func:`load_config`, :func:`train` and :func:`test`; the config's model decides
what is trained. User mistakes are caught here, before the Runner starts, as one clear error.
"""
from __future__ import annotations

import os
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..errors import CheckpointError, ConfigError, DatasetError
from .faults import stop_cleanly
from .finite_loss import add_finite_loss_hook
from .launch import adjust_launch


def load_config(path: 'str | os.PathLike', cfg_options: Mapping[str, Any] | None = None,
                work_dir: str | None = None) -> Any:
    from mmengine.config import Config
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f'{path}: config file not found')
    try:
        cfg = Config.fromfile(str(path))
    except Exception as e:  # syntax errors, missing _base_, bad mmdet:: scope
        raise ConfigError(f'{path}: cannot be read as an mmengine config: {type(e).__name__}: {e}') from None
    if cfg_options:
        cfg.merge_from_dict(dict(cfg_options))
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = str(Path('work_dirs') / path.stem)
    return cfg


def _datasets(cfg: Any) -> Iterable[tuple[str, Mapping[str, Any]]]:
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(key)
        if not loader or not isinstance(loader.get('dataset'), Mapping):
            continue
        ds = loader['dataset']
        while isinstance(ds.get('dataset'), Mapping):      # RepeatDataset / ClassBalancedDataset wrappers
            ds = ds['dataset']
        yield key, ds


def check_data(cfg: Any) -> None:
    """Fail fast, with the path and the expected layout, on a missing or malformed dataset.

    mmdet's datasets report these as a raw FileNotFoundError or KeyError deep in a dataloader;
    ours raise :class:`DatasetError` themselves, so only COCO-style configs need a look here.
    """
    from ..data.coco_check import validate_coco
    for key, ds in _datasets(cfg):
        root = ds.get('data_root') or ''
        ann = ds.get('ann_file')
        if not ann:
            continue
        ann_path = Path(root) / ann
        if not ann_path.is_file():
            raise DatasetError(f'{key}: annotation file {ann_path} not found (data_root={root!r}, '
                               f'ann_file={ann!r}); expected COCO layout: <data_root>/annotations/'
                               f'instances_<split>.json with images in <data_root>/<split>/')
        prefix = ds.get('data_prefix') or {}
        img_dir = Path(root) / prefix.get('img', '') if isinstance(prefix, Mapping) else None
        if img_dir is not None and not img_dir.is_dir():
            raise DatasetError(f'{key}: image folder {img_dir} not found (data_root={root!r}, data_prefix={prefix})')
        if str(ann_path).endswith('.json'):
            validate_coco(ann_path, img_dir)


def apply_speed_options(cfg: Any, *, channels_last: bool | None = None, cudnn_benchmark: bool = False) -> Any:
    """The command line's ``--[no-]channels-last`` / ``--cudnn-benchmark`` as config entries.

    ``channels_last`` (a top-level key: True, False or ``'auto'``; absent means False) is read by
    :func:`build_runner`; None leaves the config's choice. ``cudnn_benchmark`` is mmengine's own
    ``env_cfg`` entry; its flag only switches it on, so a config that sets it keeps its choice.
    """
    if channels_last is not None:
        cfg.channels_last = bool(channels_last)
    if cudnn_benchmark:
        cfg.env_cfg = dict(cfg.get('env_cfg') or {}, cudnn_benchmark=True)
    return cfg


CHANNELS_LAST_AUTO_DEVICES = ('cpu',)
"""Where ``channels_last='auto'`` turns the layout on: the devices on which it was measured faster.
On this project's 2-core CPU (oneDNN) it made the 0-600M search's SPOS step 1.29x (64 px) / 1.60x
(224 px) and cream_287's retraining step 1.44x faster (benchmarks/README.md). On CUDA it is off until
measured there (it is known to pay with fp16 tensor cores under ``--amp``; fp32 depthwise convs are unmeasured)."""


def channels_last_enabled(cfg: Any, device: str | None = None) -> bool:
    """Resolve the config's ``channels_last`` (True, False or ``'auto'``) for the device the Runner
    trains on (mmengine's ``get_device()`` unless given)."""
    value = cfg.get('channels_last', False)
    if value == 'auto':
        if device is None:
            from mmengine.device import get_device
            device = get_device()
        return device in CHANNELS_LAST_AUTO_DEVICES
    if not isinstance(value, bool):
        raise ConfigError(f"channels_last={value!r}: expected True, False or 'auto'")
    return value


def _runner_class(cfg: Any) -> Any:
    """The Runner class for ``cfg`` (``runner_type`` or mmengine's), made channels_last when
    :func:`channels_last_enabled` says so.

    The weights are converted in ``wrap_model``, i.e. before DDP wraps the model: DDP lays out its
    gradient buckets after the parameters' strides when it is built, and a later conversion would
    leave every gradient copied through a mismatched view. Convolutions follow their weights'
    layout, so activations become channels_last from the stem on without touching the data.
    """
    from mmengine.runner import Runner
    base = Runner
    if 'runner_type' in cfg:
        from mmengine.registry import RUNNERS
        base = RUNNERS.get(cfg.runner_type)
        if base is None:
            raise ConfigError(f'runner_type={cfg.runner_type!r} is not a registered Runner')
    if not channels_last_enabled(cfg):
        return base
    import torch
    if cfg.get('channels_last') == 'auto':
        from mmengine.logging import print_log
        print_log("channels_last='auto': on for this device (turn it off with --no-channels-last)", logger='current')

    def wrap_model(self: Any, model_wrapper_cfg: Any, model: Any) -> Any:
        model = model.to(memory_format=torch.channels_last)
        return base.wrap_model(self, model_wrapper_cfg, model)
    return type(f'ChannelsLast{base.__name__}', (base,), {'wrap_model': wrap_model})


def _apply_amp(cfg: Any) -> None:
    import torch
    if not torch.cuda.is_available():
        raise ConfigError('--amp needs a CUDA device; none is available here')
    ow = cfg.get('optim_wrapper') or {}
    if ow.get('type', 'OptimWrapper') == 'OptimWrapper':
        ow['type'] = 'AmpOptimWrapper'
        ow.setdefault('loss_scale', 'dynamic')
    cfg.optim_wrapper = ow


def resume_checkpoint(cfg: Any, resume: 'bool | str') -> str | None:
    """Point ``cfg`` at the checkpoint a resumed run starts from, checked; returns it (None: fresh start).

    ``resume`` is a path, or True for the work dir's ``last_checkpoint``. A truncated or corrupt
    checkpoint (a run killed while writing, a disk that filled, a wrong path) fails here with one
    error naming it and the newest intact checkpoint of the work dir; with ``cfg.resume_fallback``
    (``--resume-fallback``) the run resumes from that one instead, and says so. Only integrity is
    checked (torch's zip container and every member's CRC), the Runner loads the content. A second
    call on the same config gives the same answer.
    """
    from ..models.checkpoint import LAST_CHECKPOINT, latest_checkpoint
    if isinstance(resume, str):
        if not Path(resume).is_file():
            raise ConfigError(f'--resume {resume}: checkpoint not found')
        cfg.load_from = resume
    cfg.resume = True
    path = cfg.get('load_from')
    if path:
        if not Path(path).is_file():
            raise CheckpointError(f'{path}: checkpoint to resume from not found')
        return _intact_or_fallback(cfg, path, f'{path}: not a readable PyTorch checkpoint (truncated or corrupt)')
    marker = Path(cfg.work_dir) / LAST_CHECKPOINT
    if not marker.is_file():
        return None                             # nothing to resume: mmengine starts fresh and says so
    named = marker.read_text().strip()
    if not named:
        # mmengine's own CheckpointHook writes the marker non-atomically: killed at that instant it is
        # empty, while every checkpoint is whole (they are written atomically): the newest one is meant
        newest = latest_checkpoint(cfg.work_dir)
        if newest is None:
            raise CheckpointError(f'{marker} is empty and the work dir holds no checkpoint; start afresh '
                                  'without --resume')
        cfg.load_from = str(newest)
        return _intact_or_fallback(cfg, str(newest), f'{marker} is empty; the newest checkpoint, {newest}, is not '
                                                     'intact (truncated or corrupt)')
    moved = Path(cfg.work_dir) / Path(named).name
    if not Path(named).is_file() and moved.is_file():
        named = str(moved)              # the work dir was moved since: the same checkpoint, found by its name
    return _intact_or_fallback(cfg, named, f'{marker} names {named!r}, which is not an intact checkpoint '
                                           '(missing, truncated or corrupt)')


def _intact_or_fallback(cfg: Any, path: str, damaged: str) -> str:
    """``path`` when intact; else the newest intact checkpoint of the work dir under
    ``cfg.resume_fallback``, or one error naming both (``damaged`` says what is wrong with ``path``)."""
    from ..models.checkpoint import is_intact, latest_checkpoint
    if Path(path).is_file() and is_intact(path):
        cfg.load_from = str(path)
        return str(path)
    newest = latest_checkpoint(cfg.work_dir, intact=True) if Path(cfg.work_dir).is_dir() else None
    if newest is None:
        raise CheckpointError(f'{damaged}, and {cfg.work_dir} holds no intact checkpoint; start afresh without '
                              '--resume')
    if not cfg.get('resume_fallback', False):
        raise CheckpointError(f'{damaged}; the newest intact checkpoint in {cfg.work_dir} is {newest}: resume from '
                              f'it with --resume-fallback (or --resume {newest}), or delete the damaged file')
    from mmengine.logging import print_log
    print_log(f'{damaged}; resuming from {newest}, the newest intact checkpoint in {cfg.work_dir} '
              '(--resume-fallback)', logger='current', level=30)
    cfg.load_from = str(newest)
    return str(newest)


def build_runner(cfg: Any, resume: 'bool | str' = False, amp: bool = False) -> Any:
    """The Runner for ``cfg``: data checked, launcher chosen from the environment. (Our registry
    entries are in place already: importing any ``cream_det`` module runs the package's
    ``__init__`` first, which registers them.)"""
    if amp:
        _apply_amp(cfg)
    if resume:
        resume_checkpoint(cfg, resume)
    add_finite_loss_hook(cfg)
    check_data(cfg)
    if find_spec('mmdet') is not None:
        from ..det.neck import check_neck_channels
        check_neck_channels(cfg)
    adjust_launch(cfg)
    return _runner_class(cfg).from_cfg(cfg)


def train(cfg: Any, resume: 'bool | str' = False, amp: bool = False) -> Any:
    runner = build_runner(cfg, resume=resume, amp=amp)
    with stop_cleanly(runner):
        runner.train()
    return runner


def test(cfg: Any, checkpoint: 'str | os.PathLike') -> dict:
    if not Path(checkpoint).is_file():
        raise ConfigError(f'{checkpoint}: checkpoint not found')
    cfg.load_from = str(checkpoint)
    runner = build_runner(cfg)
    return runner.test()
