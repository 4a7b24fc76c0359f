"""Atomic file writing: a reader (or a rerun after Ctrl-C) never sees a half-written file.

A write that fails (disk full, read-only or vanished directory) raises one :class:`WriteError`
naming the file and the reason, and leaves the file it was to replace as it was: the data goes to
a temporary file beside it, renamed over the target only once complete and synced.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Callable

from ..errors import WriteError


def _atomic(path: Path, write: Callable[[Any], None], mode: str) -> None:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f'.{path.name}.', suffix='.tmp', dir=path.parent)
    except OSError as e:
        raise _write_error(path, e, 'cannot create a file in its directory') from None
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())        # mkstemp makes 0600; give the mode open() would
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        cause = _os_error_in(e)
        if cause is not None and not isinstance(e, WriteError):
            raise _write_error(path, cause, 'writing failed') from None
        raise


def _os_error_in(e: BaseException) -> OSError | None:
    """The OSError behind ``e``: itself, or what it was raised while handling (torch's zip writer
    answers a full disk with its own RuntimeError, raised while the OSError is handled)."""
    seen: set[int] = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, OSError):
            return e
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return None


def _write_error(path: Path, e: OSError, what: str) -> WriteError:
    err = WriteError(f'{path}: could not be written, {what} ({e.strerror or e}); the file there before, '
                     'if any, is untouched')
    err.errno = e.errno
    return err


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


def parse_json_or_yaml(text: str, path: 'str | os.PathLike') -> Any:
    """``text`` read from ``path`` parsed as YAML (``.yaml``/``.yml``) or JSON (any other suffix).

    The one rule for the project's hand-editable files (arch files, space specs); the parser's own
    error (``json.JSONDecodeError``, ``yaml.YAMLError``) reaches the caller, which names the file.
    """
    if Path(path).suffix.lower() in ('.yaml', '.yml'):
        import yaml
        return yaml.safe_load(text)
    import json
    return json.loads(text)


def atomic_torch_save(obj: Any, path: 'str | os.PathLike') -> None:
    import torch
    _atomic(Path(path), lambda f: torch.save(obj, f), 'wb')
