"""Atomic local writes for everything mmengine saves (checkpoints, dumped configs, JSON logs).

mmengine's ``LocalBackend.put`` opens the final path and writes into it, so a run killed while
saving leaves a truncated ``epoch_N.pth`` that a later ``--resume`` trips over. Registering this
subclass under mmengine's own extension point (``register_backend('local', ..., force=True)``)
makes every local write go to a temporary file that is renamed into place.
"""
from __future__ import annotations

from pathlib import Path
from typing import Union

from mmengine.fileio import io as _io
from mmengine.fileio.backends import LocalBackend, register_backend

from ..utils.io import atomic_write_bytes, atomic_write_text


class AtomicLocalBackend(LocalBackend):
    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        atomic_write_bytes(filepath, obj)

    def put_text(self, obj: str, filepath: Union[str, Path], encoding: str = 'utf-8') -> None:
        atomic_write_text(filepath, obj) if encoding.lower().replace('-', '') == 'utf8' else \
            atomic_write_bytes(filepath, obj.encode(encoding))


def install() -> None:
    register_backend('local', AtomicLocalBackend, force=True, prefixes='')
    for key, inst in list(_io.backend_instances.items()):      # drop plain instances cached before us
        if type(inst) is LocalBackend:
            del _io.backend_instances[key]


install()
