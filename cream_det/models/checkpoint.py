"""Reading, checking and writing checkpoints of subnets.

A cream_det checkpoint is a plain dict ``{'state_dict': ..., 'meta': {'cream_arch': <arch dict>, ...}}``
loadable with ``torch.load(weights_only=True)``; mmengine's Runner checkpoints have the same two
keys, so retrain checkpoints and converted official ones are read by the same code. Embedding the
arch means a detector or ``tools/test.py`` needs nothing but the path.
"""
from __future__ import annotations

import os
import pickle
import re
import zipfile
from pathlib import Path
from functools import lru_cache
from typing import Any, Mapping

import torch
import torch.nn as nn

from ..errors import CheckpointError
from ..space import Arch, as_arch
from ..utils.io import atomic_torch_save

ARCH_KEY = 'cream_arch'
#: keys of the classification head a checkpoint may carry; a backbone has no use for them
HEAD_KEYS = ('conv_head.', 'classifier.', 'norm_head.')
#: the one key every subnet has, under whatever prefix holds the subnet
STEM_KEY = 'conv_stem.weight'


def read_checkpoint(path: 'str | os.PathLike', mmap: bool = False) -> dict[str, Any]:
    """``torch.load(weights_only=True)`` with one clear error for a missing or unreadable file;
    ``mmap`` leaves the tensors on disk (for a reader that wants only the metadata)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f'{path}: checkpoint file not found')
    try:
        with torch.serialization.safe_globals(_runner_safe_globals()):
            obj = torch.load(path, map_location='cpu', weights_only=True, mmap=mmap or None)
    except (RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, EOFError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f'{path}: not a readable PyTorch checkpoint ({first})') from None
    if not isinstance(obj, Mapping):
        raise CheckpointError(f'{path}: expected a dict checkpoint, found {type(obj).__name__}')
    return dict(obj)


def _runner_safe_globals() -> list:
    """The non-tensor types an mmengine Runner checkpoint pickles (its message hub's HistoryBuffer,
    numpy scalars): mmengine's own allow-list, so retrain checkpoints load with ``weights_only=True``."""
    try:
        from mmengine.runner.checkpoint import get_torch_safe_globals
        return list(get_torch_safe_globals())
    except ImportError:
        pass
    try:
        import numpy as np
        from mmengine.logging.history_buffer import HistoryBuffer
    except ImportError:                 # no mmengine: plain state dicts need nothing extra
        return []
    core = getattr(np, '_core', None) or np.core
    return [HistoryBuffer, core.multiarray._reconstruct, core.multiarray.scalar, np.ndarray, np.dtype,
            type(np.dtype(np.uint32)), type(np.dtype(np.float64)), type(np.dtype(np.int64))]


def extract_state_dict(ckpt: Mapping[str, Any], use_ema: bool = False, prefix: str = '',
                       source: str = 'checkpoint') -> dict[str, torch.Tensor]:
    """Unwrap the usual containers (``state_dict``/``state_dict_ema``/``model``/``ema_state_dict``)
    and strip a DDP ``module.`` prefix and an optional model-attribute ``prefix``."""
    ema_keys = ('state_dict_ema', 'ema_state_dict', 'model_ema')
    plain_keys = ('state_dict', 'model')
    keys = ema_keys if use_ema else plain_keys
    sd = next((ckpt[k] for k in keys if isinstance(ckpt.get(k), Mapping)), None)
    if sd is None:
        if use_ema:
            raise CheckpointError(f'{source}: no EMA weights (looked for {", ".join(ema_keys)})')
        sd = ckpt if all(isinstance(v, torch.Tensor) for v in ckpt.values()) else None
    if sd is None:
        raise CheckpointError(f'{source}: no state dict found (keys: {", ".join(map(str, list(ckpt)[:8]))})')
    out = {}
    for k, v in sd.items():
        k = k[len('module.'):] if k.startswith('module.') else k
        if prefix:
            if not k.startswith(prefix):
                continue
            k = k[len(prefix):]
        out[k] = v
    if not out:
        raise CheckpointError(f"{source}: no weights under the prefix '{prefix}'")
    return out


def embedded_arch(ckpt: Mapping[str, Any], source: str = 'checkpoint') -> Arch | None:
    meta = ckpt.get('meta') or {}
    d = meta.get(ARCH_KEY) if isinstance(meta, Mapping) else None
    if d is None:
        return None
    try:
        return Arch.from_dict(d)
    except CheckpointError:
        raise
    except Exception as e:
        raise CheckpointError(f'{source}: the embedded arch is invalid: {e}') from None


def same_network(a: Arch | None, b: Arch | None, head: bool = False) -> bool:
    """The one identity rule for saved nets: the same space and ops give the same weights layout
    (the resolution may differ). The class count is the classifier's shape, so it counts only for
    a caller that loads the head into a head it has already sized (``head=True``: resuming or
    testing a classifier); a backbone, a teacher that takes the checkpoint's head, or an evaluation
    that sizes the head from the checkpoint compare without it. ``None`` (nothing embedded /
    nothing known) agrees with anything."""
    if a is None or b is None:
        return True
    return (a.stages, a.space) == (b.stages, b.space) and (not head or a.num_classes == b.num_classes)


def strip_to_subnet(sd: Mapping[str, torch.Tensor], drop_head: bool = False) -> dict[str, torch.Tensor]:
    """The subnet's weights with bare timm keys, whatever holds them: ``''`` (converted/official),
    ``net.`` (a retrain Runner), ``backbone.net.`` (a detector). The prefix is read off the stem,
    which every subnet has; ``drop_head`` leaves out the classification head a backbone has no use for."""
    prefix = next((k[:-len(STEM_KEY)] for k in sd if k.endswith(STEM_KEY)), '')
    out = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
    if drop_head:
        out = {k: v for k, v in out.items() if not k.startswith(HEAD_KEYS)}
    return out


def load_subnet(path: 'str | os.PathLike', arch: 'Arch | str | Mapping | None' = None, *, use_ema: bool = False,
                prefix: str = '', drop_head: bool = False, head: bool = False, given_as: str = 'the given arch is',
                missing: str | None = 'pass the arch it holds', fix: str = '',
                ckpt: Mapping[str, Any] | None = None) -> tuple[Arch | None, dict[str, torch.Tensor]]:
    """The one reader of a saved subnet: ``(its arch, its weights with bare timm keys)``.

    The arch is the embedded one when there is one (it carries the resolution and class count the
    weights were trained with), else ``arch``; with both, they must be :func:`same_network`
    (``head`` as there); ``given_as`` words the other side in the refusal (e.g. ``'--arch names'``),
    ``fix`` the way out it suggests.
    With neither, ``missing`` is the fix the error names (``None``: return ``(None, weights)``, for
    a plain net whose shapes alone decide). ``ckpt`` is the file's content when a caller has it.
    """
    src = str(path)
    ckpt = read_checkpoint(path) if ckpt is None else ckpt
    found = embedded_arch(ckpt, src)
    given = None if arch is None else as_arch(arch)
    if found is None and given is None and missing is not None:
        raise CheckpointError(f'{src} embeds no arch; {missing}')
    if not same_network(found, given, head):
        raise CheckpointError(f'{src} embeds arch {found}, but {given_as} {given}' + (f'; {fix}' if fix else ''))
    sd = strip_to_subnet(extract_state_dict(ckpt, use_ema, prefix, src), drop_head)
    return (found if found is not None else given), sd


def checkpoint_arch(path: 'str | os.PathLike') -> Arch | None:
    """The arch a checkpoint embeds, for a builder that must know the network before its weights
    are due (``CreamBackbone(arch=None)`` and its ``CreamFPN``): the file is mapped, not read (its
    tensors stay on disk), and one answer per file version serves every asker of one build."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f'{p}: checkpoint file not found')
    st = p.stat()
    return _checkpoint_arch(str(p.resolve()), st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=16)
def _checkpoint_arch(path: str, mtime_ns: int, size: int) -> Arch | None:
    try:
        ckpt = read_checkpoint(path, mmap=True)
    except CheckpointError:             # torch's legacy (non-zip) format cannot be mapped: read it
        ckpt = read_checkpoint(path)
    return embedded_arch(ckpt, path)


#: the file in which mmengine's Runner names a work dir's newest checkpoint
LAST_CHECKPOINT = 'last_checkpoint'


def latest_checkpoint(work_dir: 'str | os.PathLike', intact: bool = False) -> Path | None:
    """A work dir's newest checkpoint: the one mmengine's ``last_checkpoint`` marker names (a path
    from before the dir was moved is found inside it by file name), else the highest
    ``epoch_N.pth``/``iter_N.pth``; ``None`` when there is none. With ``intact``, damaged files
    (a run killed while writing; mmengine writes neither file atomically) are passed over."""
    work_dir = Path(work_dir)
    ok = is_intact if intact else Path.is_file
    marker = work_dir / LAST_CHECKPOINT
    if marker.is_file():
        named = Path(marker.read_text().strip())
        for p in (named, work_dir / named.name):
            if named.name and p.is_file() and ok(p):
                return p
    found = [(int(m.group(2)), p) for p in work_dir.glob('*.pth')
             if (m := re.fullmatch(r'(epoch|iter)_(\d+)\.pth', p.name))]
    return next((p for _, p in sorted(found, reverse=True) if ok(p)), None)


def is_intact(path: 'str | os.PathLike') -> bool:
    """torch's zip container opens and every member passes its CRC (the content is not loaded)."""
    try:
        with zipfile.ZipFile(path) as z:
            return z.testzip() is None
    except (zipfile.BadZipFile, OSError):
        return False


def check_fits(model: nn.Module, sd: Mapping[str, torch.Tensor], source: str = 'checkpoint',
               ignore_missing: tuple[str, ...] = (), ignore_unexpected: tuple[str, ...] = ()) -> None:
    """Refuse a state dict that does not match the model, naming the first offending keys."""
    own = model.state_dict()
    missing = [k for k in own if k not in sd and not k.startswith(ignore_missing or ('\0',))]
    unexpected = [k for k in sd if k not in own and not k.startswith(ignore_unexpected or ('\0',))]
    shapes = [f'{k}: checkpoint {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}'
              for k in own if k in sd and sd[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        parts = []
        if shapes:
            parts.append(f'{len(shapes)} shape mismatch(es), first: {"; ".join(shapes[:3])}')
        if missing:
            parts.append(f'{len(missing)} missing key(s), first: {", ".join(missing[:5])}')
        if unexpected:
            parts.append(f'{len(unexpected)} unexpected key(s), first: {", ".join(unexpected[:5])}')
        raise CheckpointError(f'{source} does not fit the architecture: ' + '; '.join(parts)
                              + '. Check that --arch names the network the checkpoint was trained for.')


def save_subnet_checkpoint(path: 'str | os.PathLike', state_dict: Mapping[str, torch.Tensor], arch: Arch,
                           **meta: Any) -> Path:
    """Atomically write ``{'state_dict', 'meta': {'cream_arch', ...}}``."""
    path = Path(path)
    atomic_torch_save({'state_dict': dict(state_dict), 'meta': {ARCH_KEY: arch.to_dict(), **meta}}, path)
    return path


def load_weights(model: nn.Module, path: 'str | os.PathLike', use_ema: bool = False, prefix: str = '',
                 strict: bool = True) -> nn.Module:
    """Load a cream_det / mmengine / official checkpoint into a subnet, checking its embedded arch."""
    _, sd = load_subnet(path, getattr(model, 'cream_arch', None), use_ema=use_ema, prefix=prefix, missing=None,
                        given_as="it differs from the model's arch")
    if strict:
        check_fits(model, sd, str(path))
    model.load_state_dict(sd, strict=strict)
    return model
