"""Atomic file writing: a reader (or a rerun after Ctrl-C) never sees a half-written file."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Callable

from ..errors import CreamDetError


def _atomic(path: Path, write: Callable[[Any], None], mode: str) -> None:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f'.{path.name}.', suffix='.tmp', dir=path.parent)
    except OSError as e:
        raise CreamDetError(f'{path}: cannot write here ({e.strerror or e})') from None
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())        # mkstemp makes 0600; give the mode open() would
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: 'str | os.PathLike', text: str) -> None:
    _atomic(Path(path), lambda f: f.write(text.encode('utf-8')), 'wb')


def atomic_write_bytes(path: 'str | os.PathLike', data: bytes) -> None:
    _atomic(Path(path), lambda f: f.write(data), 'wb')


def png_bytes(fig: Any) -> bytes:
    """A matplotlib figure as PNG bytes, the figure closed (plots are then written atomically)."""
    import io

    import matplotlib.pyplot as plt
    buf = io.BytesIO()
    fig.savefig(buf, format='png')
    plt.close(fig)
    return buf.getvalue()


def atomic_torch_save(obj: Any, path: 'str | os.PathLike') -> None:
    import torch
    _atomic(Path(path), lambda f: torch.save(obj, f), 'wb')
