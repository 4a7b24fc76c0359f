"""What a search leaves in its work dir, read in one place.

Three tools start from a finished search — comparing strategies (``tools/compare_strategies.py``),
the detection-aware choice (``tools/choose_det_arch.py``) and ``tools/rank_archs.py`` — and each
needs the same facts: which checkpoint is the search's latest, which config it ran, and what
``search_summary.json`` says of it (the MACs range and the supernet's depths). Reading them here
keeps one answer per fact: a depth is read off what the search wrote, not guessed from key names,
whenever the search wrote it.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ..errors import CheckpointError, ConfigError
from ..models.checkpoint import latest_checkpoint
from ..utils.io import atomic_write_text

#: written by ``run_search`` when a search ends: the pick, the MACs range, the supernet's depths, ...
SUMMARY = 'search_summary.json'


def write_summary(work_dir: 'str | os.PathLike', data: Mapping[str, Any]) -> Path:
    """Atomically (re)write the work dir's ``search_summary.json``."""
    path = Path(work_dir) / SUMMARY
    atomic_write_text(path, json.dumps(dict(data), indent=2) + '\n')
    return path


def read_summary(work_dir: 'str | os.PathLike') -> dict[str, Any] | None:
    """``search_summary.json`` (``None`` for a search that has not finished), its MACs range checked."""
    path = Path(work_dir) / SUMMARY
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding='utf-8'))
        for key in ('macs_range', 'latency_range'):
            if key in data:
                lo, hi = data[key]
                data[key] = (float(lo), float(hi))
        if data.get('supernet_depths') is not None:
            data['supernet_depths'] = tuple(int(d) for d in data['supernet_depths'])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as e:
        raise ConfigError(f'{path}: unreadable ({type(e).__name__}: {e}); it should be the summary a search wrote '
                          '(delete it to go without: every board path, depths from the checkpoint)') from None
    return data


@dataclass(frozen=True)
class FinishedSearch:
    """A search's work dir as the tools that build on it see it."""

    work_dir: Path
    checkpoint: Path | None             # the latest supernet checkpoint
    summary: dict[str, Any] | None      # search_summary.json; None before the search ended

    @property
    def macs_range(self) -> tuple[float, float] | None:
        return (self.summary or {}).get('macs_range')

    @property
    def latency_range(self) -> tuple[float, float] | None:
        """The predicted-ms range of a search under a latency budget (``None``: none)."""
        return (self.summary or {}).get('latency_range')

    @property
    def depths(self) -> tuple[int, ...] | None:
        """The supernet's layers per searchable stage, as the search recorded them."""
        return (self.summary or {}).get('supernet_depths')

    def config(self) -> Path:
        """The one config mmengine dumped into the work dir (the one the search ran)."""
        configs = sorted(self.work_dir.glob('*.py'))
        if len(configs) != 1:
            raise ConfigError(f'{self.work_dir}: expected the one config a search dumps into its work dir, found '
                              f'{[c.name for c in configs] or "none"}')
        return configs[0]


def read_search(work_dir: 'str | os.PathLike', checkpoint: 'str | os.PathLike | None' = None) -> FinishedSearch:
    """The search in ``work_dir``; ``checkpoint`` overrides its latest one (and must exist)."""
    wd = Path(work_dir)
    if checkpoint is not None:
        if not Path(checkpoint).is_file():
            raise CheckpointError(f'{checkpoint}: supernet checkpoint not found')
        ckpt: Path | None = Path(checkpoint)
    else:
        ckpt = latest_checkpoint(wd) if wd.is_dir() else None
    return FinishedSearch(wd, ckpt, read_summary(wd) if wd.is_dir() else None)


__all__ = ['FinishedSearch', 'SUMMARY', 'read_search', 'read_summary', 'write_summary']
