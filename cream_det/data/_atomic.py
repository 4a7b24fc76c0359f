"""All-or-nothing output directories for dataset generators.

A dataset that was half written when the user pressed Ctrl-C looks complete to a training run
(folders and an annotation file exist) and fails much later in confusing ways. So generators write
into a hidden sibling directory and rename it into place only once everything is on disk; an old
dataset is replaced (with ``force``) only after its successor is complete.
"""
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import DatasetError


def check_output_dir(out_dir: str | os.PathLike, force: bool) -> Path:
    """Refuse to clobber user data before any work is done, so a long run cannot fail at the end."""
    out = Path(out_dir)
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise DatasetError(f'output path {out} exists and is not a directory; choose another path')
    try:
        non_empty = out.is_dir() and any(out.iterdir())
    except OSError as exc:
        raise DatasetError(f'cannot read output directory {out}: {exc.strerror or exc}') from None
    if non_empty and not force:
        raise DatasetError(f'output directory {out} is not empty; pass --force (force=True) '
                           'to replace it')
    return out


@contextmanager
def atomic_dir(out_dir: str | os.PathLike, force: bool) -> Iterator[Path]:
    """Yield a scratch directory that becomes ``out_dir`` only if the block finishes.

    OS errors (unwritable parent, disk full) become :class:`DatasetError` so the tools report them
    as a user problem with the path, not as a traceback.
    """
    out = check_output_dir(out_dir, force).absolute()
    tmp = out.parent / f'.{out.name}.partial-{os.getpid()}'
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
    except OSError as exc:
        raise DatasetError(f'cannot create output directory {out}: {_explain(out, exc)}') from None
    try:
        yield tmp
        _swap_in(tmp, out)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DatasetError(f'writing {out} failed: {exc.strerror or exc}') from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _swap_in(tmp: Path, out: Path) -> None:
    """Rename ``tmp`` to ``out``; an existing ``out`` is moved aside, and restored on failure."""
    if not out.exists():
        os.rename(tmp, out)
        return
    old = out.parent / f'.{out.name}.old-{os.getpid()}'
    shutil.rmtree(old, ignore_errors=True)
    os.rename(out, old)
    try:
        os.rename(tmp, out)
    except OSError:
        os.rename(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _explain(out: Path, exc: OSError) -> str:
    """Name the regular file blocking the path: mkdir's bare 'File exists' does not say which."""
    existing = next((p for p in out.parents if p.exists()), None)
    if existing is not None and not existing.is_dir():
        return f'{existing} is not a directory'
    return str(exc.strerror or exc)
