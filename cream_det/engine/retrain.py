"""Retraining on mmengine's Runner: the few pieces mmengine lacks, and the config checks of the tool.

Importing this module registers everything a retrain config names: ``CreamClassifier`` and
``CreamAccuracy`` (``classification.py``), ``CreamImageFolder`` (``data/imagenet.py``) and, here,

- ``EmbedArchHook``: writes ``meta.cream_arch`` (ops, resolution, class count, MACs) into every
  checkpoint, so ``tools/test.py CKPT`` and the detection backbone need nothing but the file.
- ``CreamCheckpointHook``: mmengine's ``CheckpointHook`` made kill-safe. The write of a ``.pth``
  itself is atomic package-wide (``engine/atomic_backend.py`` replaces mmengine's local file
  backend: temporary file, fsync, rename). What remains is the hook's order: with
  ``max_keep_ckpts`` mmengine deletes the oldest checkpoint *before* writing the new one and then
  rewrites ``last_checkpoint`` in place, so a kill in between (with ``max_keep_ckpts=1``, the file
  ``last_checkpoint`` names) leaves nothing to resume. Here the new checkpoint is written first,
  ``last_checkpoint`` is replaced atomically, and old checkpoints are deleted last.
- ``EMAValLoop``: validates the raw and the EMA weights (mmengine's ``EMAHook``) in one val epoch
  and logs them as ``top1``/``top5`` and ``ema/top1``/``ema/top5``.
- ``FractionalEpochStepLR``: ``StepLR`` with a step of a fraction of epochs (EfficientNet's decay
  every 2.4 epochs), rounded to whole iterations; mmengine's own keeps a float step that never fires.
  (The ImageNet configs use ``TimmStepLR``/``TimmCosineLR`` from ``timm_schedule.py``: the authors'
  timm schedules, exactly; the digits demo keeps this one.)
- timm's ``RMSpropTF`` in mmengine's ``OPTIMIZERS`` (the authors' optimizer).
"""
from __future__ import annotations

import os
from collections import deque
from pathlib import Path
from typing import Any, Mapping

from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook, EMAHook, Hook
from mmengine.model import is_model_wrapper
from mmengine.optim.scheduler import StepLR
from mmengine.optim.scheduler.param_scheduler import INF
from mmengine.registry import HOOKS, LOOPS, OPTIMIZERS, PARAM_SCHEDULERS
from mmengine.runner import ValLoop

from ..data.imagenet import CreamImageFolder
from ..errors import CheckpointError, ConfigError, CreamDetError
from ..models.checkpoint import ARCH_KEY, embedded_arch, read_checkpoint, same_network
from ..space import ZOO, Arch, as_arch
from ..utils.io import atomic_write_text
from .classification import CreamAccuracy, CreamClassifier, classifier_arch
from .timm_schedule import TimmCosineLR, TimmStepLR  # noqa: F401  (registers the authors' schedules)

EMA_PREFIX = 'ema/'


# ---- checkpoints -------------------------------------------------------------------------------
def _unwrap(model: Any) -> Any:
    return model.module if is_model_wrapper(model) else model


@HOOKS.register_module()
class EmbedArchHook(Hook):
    """Embed the trained network's arch in every checkpoint the Runner saves.

    Also records ``meta.cream_weights``: ``'ema'`` when mmengine's ``EMAHook`` is active (it saves
    the averaged weights as ``state_dict`` and the raw ones under ``ema_state_dict``), else ``'raw'``.
    """

    priority = 'VERY_HIGH'

    def before_save_checkpoint(self, runner: Any, checkpoint: dict) -> None:
        model = _unwrap(runner.model)
        arch = getattr(model, 'arch', None)
        if not isinstance(arch, Arch):
            arch = getattr(getattr(model, 'net', None), 'cream_arch', None)
        if not isinstance(arch, Arch):
            raise ConfigError(f'EmbedArchHook: the model ({type(model).__name__}) has no Cream arch to embed; '
                              f'remove the hook from custom_hooks or train a CreamClassifier')
        meta = checkpoint.setdefault('meta', {})
        meta[ARCH_KEY] = arch.to_dict()
        meta['cream_weights'] = 'ema' if any(isinstance(h, EMAHook) for h in runner.hooks) else 'raw'


@HOOKS.register_module()
class CreamCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` with a kill-safe order of operations (see the module docstring).

    Takes exactly ``CheckpointHook``'s arguments; with a non-local ``out_dir`` it is ``CheckpointHook``.
    """

    def _save_checkpoint_with_step(self, runner: Any, step: int, meta: dict) -> None:
        if not isinstance(self.file_backend, LocalBackend):
            return super()._save_checkpoint_with_step(runner, step, meta)
        drop: list[int] = []
        if self.max_keep_ckpts > 0 and not (self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step):
            ids = [*self.keep_ckpt_ids, step]
            drop, keep = ids[:-self.max_keep_ckpts], ids[-self.max_keep_ckpts:]
            self.keep_ckpt_ids = deque(keep, self.max_keep_ckpts)
            runner.message_hub.update_info('keep_ckpt_ids', keep)     # saved inside the checkpoint
        filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        runner.save_checkpoint(self.out_dir, filename, self.file_client_args, save_optimizer=self.save_optimizer,
                               save_param_scheduler=self.save_param_scheduler, meta=meta, by_epoch=self.by_epoch,
                               backend_args=self.backend_args, **self.args)
        if not is_main_process():
            return
        atomic_write_text(Path(runner.work_dir) / 'last_checkpoint', self.last_ckpt)
        for old in drop:                     # only now: a kill above leaves the previous one usable
            path = self.file_backend.join_path(self.out_dir, self.filename_tmpl.format(old))
            if self.file_backend.isfile(path):
                self.file_backend.remove(path)


# ---- validation of raw and EMA weights ---------------------------------------------------------
@LOOPS.register_module()
class EMAValLoop(ValLoop):
    """``ValLoop`` that evaluates both weight sets when mmengine's ``EMAHook`` is active.

    ``EMAHook`` swaps the averaged weights into the model in ``before_val_epoch`` and back in
    ``after_val_epoch``; between the two this loop evaluates once with them, swaps the raw weights
    in (the hook's own swap), evaluates again and swaps back. ``after_val_epoch`` receives one
    dict — ``top1``, ``top5`` (raw) and ``ema/top1``, ``ema/top5`` — so the logger, ``scalars.json``
    and ``save_best='ema/top1'`` see both. Without an ``EMAHook`` it is mmengine's ``ValLoop``.
    """

    def run(self) -> dict:
        ema = next((h for h in self.runner.hooks if isinstance(h, EMAHook)), None)
        if ema is None:
            return super().run()
        swap = getattr(ema, '_swap_ema_parameters', None)
        if swap is None:  # pragma: no cover - guards a future mmengine renaming the method
            raise ConfigError('EMAValLoop: this mmengine EMAHook cannot swap weights; use val_cfg=dict(type="ValLoop")')
        self.runner.call_hook('before_val')
        self.runner.call_hook('before_val_epoch')       # EMAHook: averaged weights in
        self.runner.model.eval()
        ema_metrics = self._evaluate()
        swap()                                          # raw weights in
        try:
            raw_metrics = self._evaluate()
        finally:
            swap()                                      # averaged back, for EMAHook's after_val_epoch
        metrics = {**raw_metrics, **{EMA_PREFIX + k: v for k, v in ema_metrics.items()}}
        self.runner.call_hook('after_val_epoch', metrics=metrics)
        self.runner.call_hook('after_val')
        return metrics

    def _evaluate(self) -> dict:
        for idx, data_batch in enumerate(self.dataloader):
            self.run_iter(idx, data_batch)
        return self.evaluator.evaluate(len(self.dataloader.dataset))


# ---- schedule and optimizer --------------------------------------------------------------------
@PARAM_SCHEDULERS.register_module()
class FractionalEpochStepLR(StepLR):
    """``StepLR`` whose ``step_size`` may be a fractional number of epochs, e.g. 2.4.

    Use it with ``by_epoch=True, convert_to_iter_based=True``: the step becomes
    ``round(step_size * iterations_per_epoch)`` iterations (as the TF EfficientNet recipe decays
    per step); ``begin``/``end`` convert as in mmengine.
    """

    def __init__(self, optimizer: Any, step_size: float, *args: Any, by_epoch: bool = True, **kwargs: Any) -> None:
        if by_epoch and float(step_size) != int(step_size):
            raise ConfigError(f'FractionalEpochStepLR step_size={step_size}: a fractional epoch step needs '
                              f'convert_to_iter_based=True')
        super().__init__(optimizer, int(step_size), *args, by_epoch=by_epoch, **kwargs)

    @classmethod
    def build_iter_from_epoch(cls, *args: Any, step_size: float, begin: float = 0, end: float = INF,
                              by_epoch: bool = True, epoch_length: int | None = None,
                              **kwargs: Any) -> 'FractionalEpochStepLR':
        if not by_epoch or not epoch_length:
            raise ConfigError('FractionalEpochStepLR: convert_to_iter_based needs by_epoch=True and a train loop')
        return cls(*args, step_size=max(1, round(step_size * epoch_length)), begin=int(begin * epoch_length),
                   end=end if end == INF else int(end * epoch_length), by_epoch=False, **kwargs)


def _register_timm_optimizers() -> None:
    from timm.optim import RMSpropTF
    if OPTIMIZERS.get('RMSpropTF') is None:
        OPTIMIZERS.register_module(name='RMSpropTF', module=RMSpropTF)


_register_timm_optimizers()


# ---- what tools/retrain.py checks before the Runner starts -------------------------------------
def _datasets(cfg: Any) -> list[dict]:
    out = []
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        ds = (cfg.get(key) or {}).get('dataset')
        if isinstance(ds, Mapping) and ds.get('type') in ('CreamImageFolder', CreamImageFolder):
            out.append(ds)
    return out


def is_classification(cfg: Any) -> bool:
    """Whether a config trains a :class:`CreamClassifier` (tools/test.py then adds MACs and params)."""
    return (cfg.get('model') or {}).get('type') in ('CreamClassifier', CreamClassifier)


def config_arch(cfg: Any) -> Arch:
    """The arch a retrain config trains (``model.arch`` with ``model.num_classes`` applied)."""
    model = cfg.get('model') or {}
    if not is_classification(cfg):
        raise ConfigError(f'{cfg.filename}: model.type is {model.get("type")!r}; tools/retrain.py trains '
                          f'CreamClassifier configs (configs/retrain/)')
    if model.get('arch') is None:
        raise ConfigError(f'{cfg.filename}: no arch; pass --arch NAME|FILE (a published name or an arch.json '
                          f'from the search)')
    return classifier_arch(model['arch'], model.get('num_classes'))


def apply_arch(cfg: Any, arch: 'str | os.PathLike | Arch') -> Arch:
    """Make ``cfg`` train ``arch``: the model's arch and every dataset's ``input_size``.

    A dataset's ``input_size`` is replaced when unset or equal to the previous arch's resolution;
    a size set to something else on purpose is kept.
    """
    new = as_arch(arch)
    model = cfg.model
    try:
        old_res = classifier_arch(model['arch']).resolution if model.get('arch') is not None else None
    except CreamDetError:       # the config's own arch may be a file that only exists elsewhere
        old_res = None
    model['arch'] = str(arch) if isinstance(arch, str) and arch in ZOO else new.to_dict()
    for ds in _datasets(cfg):
        if ds.get('input_size') in (None, old_res):
            ds['input_size'] = new.resolution
    return classifier_arch(new, model.get('num_classes'))


def fill_input_size(cfg: Any) -> None:
    """Datasets left at ``input_size=None`` take the arch's resolution."""
    res = config_arch(cfg).resolution
    for ds in _datasets(cfg):
        if ds.get('input_size') is None:
            ds['input_size'] = res


def check_checkpoint_arch(cfg: Any, path: 'str | os.PathLike', fix: str, ckpt: dict | None = None) -> None:
    """Refuse a checkpoint that embeds another network than the one the config builds."""
    found = embedded_arch(read_checkpoint(path) if ckpt is None else ckpt, str(path))
    want = config_arch(cfg)
    if not same_network(found, want, head=True):        # the Runner loads the head into the config's
        raise CheckpointError(f'{path} was trained for arch {found} ({found.num_classes} classes) but the config '
                              f'asks for {want} ({want.num_classes} classes); {fix}')


def check_resume_arch(cfg: Any, resume: 'bool | str') -> None:
    """Refuse to resume a checkpoint trained for another network than the one the config asks for.

    The checkpoint is the one the run will resume from (:func:`cream_det.engine.run.resume_checkpoint`:
    the given one, or the work dir's newest intact one).
    """
    from .run import resume_checkpoint
    path = resume_checkpoint(cfg, resume)
    if not path:
        return
    ckpt = read_checkpoint(path)
    check_checkpoint_arch(cfg, path, 'resume with the same --arch (or none, to use the config\'s), '
                                     'or start a new --work-dir', ckpt)


__all__ = ['CreamAccuracy', 'CreamCheckpointHook', 'CreamClassifier',
           'CreamImageFolder', 'EMAValLoop', 'EmbedArchHook', 'FractionalEpochStepLR', 'apply_arch',
           'check_checkpoint_arch', 'check_resume_arch', 'config_arch', 'fill_input_size', 'is_classification']
