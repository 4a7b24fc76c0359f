"""The prioritized path board (Cream, Sec. 3.1): the K best paths seen so far, ready to teach.

Each entry is a path that did well while training the supernet, kept together with a small
slice of the images it was judged on and soft targets for them: the softmax of the teacher that
distilled the path on that batch, as in the authors' code (the path's own while the board was
still empty, or with the Cream strategy's ``board_targets='own'``). Later paths are distilled
from a board entry chosen by the meta matching network (see ``matching.py``).

The rule for entering the board is the paper's, written out in :meth:`PrioritizedBoard.consider`:
a path enters if the board has room, if it beats the worst entry's accuracy by more than a
margin, or if it beats the worst entry's accuracy *and* is cheaper. Entries are judged once,
on the training batch they were sampled for, and never re-scored.

"Cheaper" is the paper's fewer FLOPs (MACs here) unless the board is built with ``cost='latency'``
(the search has a latency table and a ``latency_range``: this project's extension, docs/latency.md):
then it is lower predicted latency, and equal-accuracy entries are ordered by it too, whether or
not a MACs range is also given (a MACs range then only limits which paths may be picked).

Engine-free on purpose: tensors in, tensors out, so the board can be unit-tested and stored
inside any checkpoint.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import torch

from ..space import Arch, SearchSpace
from ..utils.io import atomic_write_text

FORMAT = 'cream_det.board/1'
#: order of entries with equal accuracy: cheaper first (the paper: "lower FLOPs win"), or costlier
#: first (the authors' code sorts (acc, FLOPs, ...) tuples in descending order)
TIEBREAKS = ('macs_asc', 'flops_desc')
#: what "cheaper" compares: MACs (the paper's FLOPs) or predicted latency in ms (with a latency range)
COSTS = ('macs', 'latency')


@dataclass
class BoardEntry:
    """A prioritized path with the evidence it teaches from."""

    code: tuple[int, ...]       # Arch.encode() of the path
    acc: float                  # top-1 (%) of the path on the training batch it entered with
    macs: int
    images: torch.Tensor        # SLICE input images of that batch
    soft: torch.Tensor          # SLICE x num_classes softmax: of the teacher that distilled the path then
                                # (the path's own while the board was empty, or with board_targets='own')
    step: int                   # global iteration at which it entered
    latency: float | None = None   # predicted ms (from the search's latency table; None without one)

    def arch(self, space: SearchSpace, resolution: int, num_classes: int) -> Arch:
        return Arch.decode(self.code, space, resolution, num_classes)


class PrioritizedBoard:
    """Up to ``size`` paths, best first by accuracy, ties by cost (``tiebreak``).

    Args:
        size: K, the number of paths kept (the paper's ``POOL_SIZE``, 10).
        margin: accuracy gap in percentage points that lets a path in regardless of cost (5).
        tiebreak: ``'macs_asc'`` (cheaper first) or ``'flops_desc'`` (the authors' sort: costlier first).
        cost: what "cheaper" compares, ``'macs'`` (the paper) or ``'latency'`` (predicted ms; every
            offered path must then come with its latency).
    """

    def __init__(self, size: int = 10, margin: float = 5.0, tiebreak: str = 'macs_asc', cost: str = 'macs') -> None:
        if size < 1:
            raise ValueError(f'board size must be at least 1, got {size}')
        if tiebreak not in TIEBREAKS:
            raise ValueError(f"board tiebreak={tiebreak!r}: one of {', '.join(TIEBREAKS)}")
        if cost not in COSTS:
            raise ValueError(f"board cost={cost!r}: one of {', '.join(COSTS)}")
        self.size, self.margin, self.tiebreak, self.cost = int(size), float(margin), tiebreak, cost
        self._entries: list[BoardEntry] = []

    def cost_of(self, macs: int, latency: float | None) -> float:
        """The cost "cheaper" compares for a path of ``macs`` MACs and ``latency`` predicted ms."""
        if self.cost == 'macs':
            return float(macs)
        if latency is None:
            raise ValueError("a board ranking by latency (cost='latency') needs each path's predicted latency")
        return float(latency)

    def _rank_key(self, e: BoardEntry) -> tuple[float, float]:
        c = self.cost_of(e.macs, e.latency)
        return (-e.acc, c if self.tiebreak == 'macs_asc' else -c)

    # ---- the paper's rule ----------------------------------------------------------------------------
    def consider(self, code: Sequence[int], acc: float, macs: int, images: torch.Tensor, soft: torch.Tensor,
                 step: int, latency: float | None = None) -> bool:
        """Offer a freshly trained path to the board; returns whether it entered.

        A path already on the board is turned away, whatever its new accuracy: entries are never
        re-scored, and a second copy would only waste one of the K teacher slots (the authors'
        code does not check this).
        """
        code = tuple(int(c) for c in code)
        if not self.would_enter(code, acc, macs, latency):
            return False
        # copies, so a stored slice does not keep its whole batch (and its graph) alive
        self._entries.append(BoardEntry(code, float(acc), int(macs), images.detach().clone(),
                                        soft.detach().clone(), int(step),
                                        None if latency is None else float(latency)))
        self._entries.sort(key=self._rank_key)
        del self._entries[self.size:]           # the worst beyond K drops out
        return True

    def would_enter(self, code: Sequence[int], acc: float, macs: int, latency: float | None = None) -> bool:
        """Whether :meth:`consider` would admit this path (lets callers skip gathering its slice)."""
        code = tuple(int(c) for c in code)
        return not any(e.code == code for e in self._entries) and \
            self._deserves_place(float(acc), self.cost_of(macs, latency))

    def _deserves_place(self, acc: float, cost: float) -> bool:
        if len(self._entries) < self.size:
            return True
        worst = self._entries[-1]
        much_better = acc > worst.acc + self.margin
        better_and_cheaper = acc > worst.acc and cost < self.cost_of(worst.macs, worst.latency)
        return much_better or better_and_cheaper

    # ---- views ---------------------------------------------------------------------------------------
    @property
    def entries(self) -> list[BoardEntry]:
        """Entries best first (a copy of the list; the entries themselves are shared)."""
        return list(self._entries)

    def best(self) -> BoardEntry:
        if not self._entries:
            raise LookupError('the prioritized board is empty')
        return self._entries[0]

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[BoardEntry]:
        return iter(list(self._entries))

    def __getitem__(self, index: int) -> BoardEntry:
        return self._entries[index]

    def __repr__(self) -> str:
        body = ', '.join(f'{e.acc:.2f}%/{e.macs / 1e6:.1f}M' + ('' if e.latency is None else f'/{e.latency:.2f}ms')
                         for e in self._entries)
        return f'PrioritizedBoard(size={self.size}, margin={self.margin}, [{body}])'

    # ---- persistence ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume a search (tensors included), safe for ``weights_only`` loading."""
        return {'size': self.size, 'margin': self.margin, 'tiebreak': self.tiebreak, 'cost': self.cost,
                'entries': [{'code': list(e.code), 'acc': e.acc, 'macs': e.macs, 'images': e.images,
                             'soft': e.soft, 'step': e.step, 'latency': e.latency} for e in self._entries]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.size, self.margin = int(state['size']), float(state['margin'])
        self.tiebreak = state.get('tiebreak', 'macs_asc')       # boards saved before the switch existed
        self.cost = state.get('cost', 'macs')                   # ... and before latency
        self._entries = [BoardEntry(tuple(int(c) for c in d['code']), float(d['acc']), int(d['macs']),
                                    d['images'], d['soft'], int(d['step']),
                                    None if d.get('latency') is None else float(d['latency']))
                         for d in state['entries']]
        self._entries.sort(key=self._rank_key)

    def to_json(self, space: SearchSpace, resolution: int, num_classes: int) -> dict[str, Any]:
        """The board as people read it: ranked arch dicts with accuracy, MACs (predicted ms) and entry step."""
        return {'format': FORMAT, 'size': self.size, 'margin': self.margin, 'cost': self.cost,
                'entries': [{'rank': r, 'acc': e.acc, 'macs': e.macs, 'step': e.step,
                             **({} if e.latency is None else {'latency_ms': e.latency}),
                             'arch': e.arch(space, resolution, num_classes).to_dict()}
                            for r, e in enumerate(self._entries, 1)]}

    def write_json(self, path: 'str | os.PathLike', space: SearchSpace, resolution: int, num_classes: int) -> None:
        atomic_write_text(path, json.dumps(self.to_json(space, resolution, num_classes), indent=2) + '\n')


__all__ = ['BoardEntry', 'PrioritizedBoard']
