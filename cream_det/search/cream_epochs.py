"""Cream's per-epoch report: what the board and the matcher did in one epoch, as a dict and a log line.

Whether Cream helps depends on when and from whom its students learn: a board filled while every
path is near chance teaches noise, and the matcher's m then learns to distil less (issue 32). The
strategy therefore keeps, per epoch, the statistics that show it (:class:`EpochStats`), and the engine
writes each epoch's dict as one JSON line of ``<work_dir>/cream_epochs.jsonl``
(:func:`write_epoch_log`, rank 0), rewritten whole from the list the strategy keeps in its state,
so a resumed search holds each epoch once. :func:`read_epoch_log` is the file's one reader.

Keys of an epoch's dict (accuracies are top-1 in %, ``None`` where the epoch had nothing to measure):

- ``epoch`` (1-based), ``steps`` (training steps in the epoch), ``warmup_steps`` (of them, still in
  the warm-up: plain CE, no board), ``warm`` (the warm-up was over at the epoch's last step);
- ``meta_updates``: second-order matcher updates since the search began;
- ``m_count``, ``m_mean``, ``m_std``: the matching weight m over the epoch's distillation steps;
- ``teacher_rank_counts``: item r is how often the board's rank r + 1 taught;
- ``teacher_minus_student_acc``: on the distillation steps, the teacher path's minus the student's
  top-1 on the step's training batch (all ranks), averaged: above 0 when teachers know more than
  their students;
- ``board_size``, ``board_acc_mean``, ``board_acc_min``, ``board_acc_max``: the board's entries at the
  epoch's end, and ``board_entered``: paths admitted to the board during the epoch (turnover);
- ``matcher_norm``, ``matcher_drift``: |W| of the matcher and |W - W_init|.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Sequence

from ..errors import CreamDetError
from ..utils.io import atomic_write_text

#: the file in the search's work dir that holds one JSON line per epoch
FILE_NAME = 'cream_epochs.jsonl'


class EpochStats:
    """Accumulates one epoch of a Cream search; :meth:`summary` turns it into the epoch's dict."""

    def __init__(self, board_size: int) -> None:
        self.board_size = board_size
        self.reset()

    def reset(self) -> None:
        self.epoch: int | None = None
        self.steps = self.warmup_steps = self.entered = 0
        self.warm = False
        self.m_values: list[float] = []
        self.gaps: list[float] = []
        self.rank_counts = [0] * self.board_size

    def note_step(self, epoch: int, warm: bool) -> None:
        self.epoch, self.warm = int(epoch), bool(warm)
        self.steps += 1
        self.warmup_steps += not warm

    def note_teacher(self, rank_index: int, m: float, gap: float) -> None:
        """A distillation step: the teacher's board index, m, and teacher-minus-student top-1."""
        self.m_values.append(float(m))
        self.gaps.append(float(gap))
        if rank_index >= len(self.rank_counts):
            self.rank_counts += [0] * (rank_index + 1 - len(self.rank_counts))
        self.rank_counts[rank_index] += 1

    def note_entry(self) -> None:
        self.entered += 1

    def summary(self, board_accs: Sequence[float], meta_updates: int, matcher_norm: float,
                matcher_drift: float) -> dict[str, Any] | None:
        """The epoch's dict (module docstring), or ``None`` when no step ran since the last reset."""
        if not self.steps:
            return None
        m_mean, m_std = _mean_std(self.m_values)
        return {'epoch': self.epoch + 1, 'steps': self.steps, 'warmup_steps': self.warmup_steps, 'warm': self.warm,
                'meta_updates': int(meta_updates), 'm_count': len(self.m_values), 'm_mean': m_mean, 'm_std': m_std,
                'teacher_rank_counts': list(self.rank_counts),
                'teacher_minus_student_acc': _mean_std(self.gaps)[0],
                'board_size': len(board_accs), 'board_acc_mean': _mean_std(board_accs)[0],
                'board_acc_min': min(board_accs, default=None), 'board_acc_max': max(board_accs, default=None),
                'board_entered': self.entered, 'matcher_norm': float(matcher_norm),
                'matcher_drift': float(matcher_drift)}


def _mean_std(values: Sequence[float]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (0 for one value; ``None`` for none), as plain floats."""
    if not values:
        return None, None
    mean = math.fsum(values) / len(values)
    if len(values) == 1:
        return mean, 0.0
    return mean, math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))


def report_line(stats: dict[str, Any]) -> str | None:
    """The epoch's one log line about the matcher, as before the dict existed (``None`` when no step distilled)."""
    if not stats['m_count']:
        return None
    ranks = ' '.join(f'{r + 1}:{c}' for r, c in enumerate(stats['teacher_rank_counts']) if c)
    return (f"cream matcher: {stats['meta_updates']} meta updates so far; m mean {stats['m_mean']:.4f} std "
            f"{stats['m_std']:.4f} over {stats['m_count']} steps; teacher board rank:count {ranks}; "
            f"|W| {stats['matcher_norm']:.4f}, |W - W_init| {stats['matcher_drift']:.2e}")


def write_epoch_log(path: 'str | os.PathLike', records: Sequence[dict[str, Any]]) -> None:
    """Write the epochs' dicts as JSON lines, replacing the file atomically."""
    atomic_write_text(path, ''.join(json.dumps(r, allow_nan=False) + '\n' for r in records))


def read_epoch_log(path: 'str | os.PathLike') -> list[dict[str, Any]]:
    """The epochs' dicts of a ``cream_epochs.jsonl``; a CreamDetError naming the file and line if one is not a dict."""
    path = Path(path)
    records = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            record = e
        if not isinstance(record, dict):
            raise CreamDetError(f'{path}:{number}: not a JSON object ({record}); the file is written by a Cream search '
                              f'(one line per epoch): rerun or resume the search to rewrite it')
        records.append(record)
    return records


__all__ = ['FILE_NAME', 'EpochStats', 'read_epoch_log', 'report_line', 'write_epoch_log']
