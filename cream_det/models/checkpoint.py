"""Reading, checking and writing checkpoints of subnets.

A cream_det checkpoint is a plain dict ``{'state_dict': ..., 'meta': {'cream_arch': <arch dict>, ...}}``
loadable with ``torch.load(weights_only=True)``; mmengine's Runner checkpoints have the same two
keys, so retrain checkpoints and converted official ones are read by the same code. Embedding the
arch means a detector or ``tools/test.py`` needs nothing but the path.
"""
from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any, Mapping

import torch
import torch.nn as nn

from ..errors import CheckpointError
from ..space import Arch
from ..utils.io import atomic_torch_save

ARCH_KEY = 'cream_arch'


def read_checkpoint(path: 'str | os.PathLike') -> dict[str, Any]:
    """``torch.load(weights_only=True)`` with one clear error for a missing or unreadable file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f'{path}: checkpoint file not found')
    try:
        with torch.serialization.safe_globals(_runner_safe_globals()):
            obj = torch.load(path, map_location='cpu', weights_only=True)
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


def same_network(a: Arch | None, b: Arch | None) -> bool:
    """Whether two archs describe the same weights layout (ops and space; resolution may differ).
    ``None`` (nothing embedded / nothing known) agrees with anything."""
    return a is None or b is None or (a.stages, a.space) == (b.stages, b.space)


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
    ckpt = read_checkpoint(path)
    arch = embedded_arch(ckpt, str(path))
    own = getattr(model, 'cream_arch', None)
    if not same_network(arch, own):
        raise CheckpointError(f'{path}: embedded arch {arch} differs from the model\'s arch {own}')
    sd = extract_state_dict(ckpt, use_ema, prefix, str(path))
    if strict:
        check_fits(model, sd, str(path))
    model.load_state_dict(sd, strict=strict)
    return model
