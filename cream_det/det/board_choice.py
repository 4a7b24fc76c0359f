"""Detection-aware choice among a search's board paths: the parts that need no Runner.

Cream picks its final arch by ImageNet accuracy on a training batch; the path that transfers best
to detection need not be that one. ``tools/choose_det_arch.py`` (driven by
:mod:`cream_det.engine.det_choice`) therefore fine-tunes RetinaNet briefly for each board path,
starting from the path's supernet-inherited weights, and ranks the paths by COCO bbox mAP.

This module reads what a search leaves in its work dir — ``board.json``, and through
:mod:`cream_det.search.finished` the latest supernet checkpoint and ``search_summary.json`` (MACs
range, depths) — checks that board and checkpoint belong to the same search space, exports one path's
inherited weights as a retrain-style checkpoint (arch embedded, so ``CreamBackbone`` needs only
the path), and ranks and tabulates the fine-tuned results.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from ..errors import ArchError, CheckpointError, ConfigError, CreamDetError
from ..models.checkpoint import check_fits, read_checkpoint, save_subnet_checkpoint
from ..search.board import FORMAT as BOARD_FORMAT
from ..search.finished import read_search
from ..space import Arch

#: Where a search keeps its supernet under the mmengine model (``SupernetSearch.supernet``).
SUPERNET_PREFIX = 'supernet.'


@dataclass(frozen=True)
class Candidate:
    """One board path as the search recorded it."""

    board_rank: int
    arch: Arch
    acc: float          # top-1 (%) the board judged it by
    macs: int
    step: int           # search iteration at which it entered the board
    latency: float | None = None    # predicted ms, when the search had a latency table

    @property
    def name(self) -> str:
        """Sub work dir name: board rank first so a listing reads in board order."""
        return f'{self.board_rank:02d}_{self.arch.hash}'


# ---- the search's outputs --------------------------------------------------------------------------
def read_board(path: 'str | os.PathLike') -> list[Candidate]:
    """The ranked paths of a ``board.json`` (``PrioritizedBoard.to_json``), best first."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f'{path}: board.json not found; a Cream search writes it in its work dir as soon as a '
                          'path enters the board (SPOS keeps no board: its arch.json is its only pick)')
    try:
        data = json.loads(path.read_text(encoding='utf-8'))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f'{path}: not valid JSON ({e}); it should be the board.json a search wrote') from None
    if not isinstance(data, dict) or data.get('format') != BOARD_FORMAT:
        found = data.get('format') if isinstance(data, dict) else type(data).__name__
        raise ConfigError(f"{path}: format {found!r} is not '{BOARD_FORMAT}'; pass the work dir of a Cream search")
    entries = data.get('entries')
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f'{path}: the board is empty (the search stopped before any path entered it, e.g. '
                          'during warm-up); train the search longer or use its arch.json')
    out = []
    for i, e in enumerate(entries):
        try:
            arch = Arch.from_dict(e['arch'])
            out.append(Candidate(int(e.get('rank', i + 1)), arch, float(e['acc']), int(e['macs']),
                                 int(e.get('step', -1)),
                                 None if e.get('latency_ms') is None else float(e['latency_ms'])))
        except ArchError as err:
            raise ArchError(f'{path}: entries[{i}].arch: {err}') from None
        except (KeyError, TypeError, ValueError) as err:
            raise ConfigError(f'{path}: entries[{i}] is malformed ({type(err).__name__}: {err}); '
                              'it needs rank, acc, macs and arch') from None
    spaces = {c.arch.space.name for c in out}
    if len(spaces) > 1:
        raise ConfigError(f'{path}: the board mixes search spaces {sorted(spaces)}; one search writes one space')
    return sorted(out, key=lambda c: c.board_rank)


def find_search_checkpoint(search_dir: 'str | os.PathLike', checkpoint: 'str | os.PathLike | None' = None) -> Path:
    """The supernet checkpoint to inherit from: ``checkpoint`` if given, else the search's latest."""
    found = read_search(search_dir, checkpoint).checkpoint
    if found is None:
        raise CheckpointError(f'{search_dir}: no supernet checkpoint (no last_checkpoint marker, no epoch_N.pth); '
                              'pass --checkpoint, or point at the work dir tools/search.py wrote')
    return found


def load_supernet(checkpoint: 'str | os.PathLike', board: Sequence[Candidate], board_file: str = 'board.json',
                  depths: Sequence[int] | None = None) -> Any:
    """The search's trained supernet, rebuilt for the board's space and loaded strictly.

    ``depths`` are the ones the search recorded (``search_summary.json``); a search that did not
    finish recorded none, and then they are read off the checkpoint's keys
    (``supernet.blocks.<stage>.<layer>.<op>.``). A checkpoint whose supernet does not have the
    board's space (other stages, ops or widths) is refused, naming both files.
    """
    from ..models.supernet import Supernet
    ckpt_path = str(checkpoint)
    ckpt = read_checkpoint(checkpoint)
    sd = ckpt.get('state_dict') if isinstance(ckpt.get('state_dict'), Mapping) else ckpt
    sd = {k[len(SUPERNET_PREFIX):]: v for k, v in sd.items() if k.startswith(SUPERNET_PREFIX)}
    if not sd:
        raise CheckpointError(f'{ckpt_path}: holds no supernet weights (no "{SUPERNET_PREFIX}*" keys); pass a '
                              'checkpoint written by tools/search.py')
    ref = board[0].arch
    space = ref.space
    mismatch = (f'{ckpt_path}: its supernet does not fit the search space {space.name!r} of {board_file}; '
                'the board and the checkpoint come from different searches (pass the matching --checkpoint)')
    depths = tuple(depths) if depths is not None else _depths_from_keys(sd)
    if len(depths) != space.num_stages:
        raise CheckpointError(f'{mismatch}: {len(depths)} searchable stages in the checkpoint, '
                              f'{space.num_stages} in the space')
    try:
        supernet = Supernet(space, depths, ref.num_classes, resolution=ref.resolution)
        check_fits(supernet, sd, ckpt_path)
    except CreamDetError as e:
        raise CheckpointError(f'{mismatch}: {e}') from None
    supernet.load_state_dict(sd, strict=True)
    for c in board:
        try:
            supernet.parse_path(c.arch)
        except ArchError as e:
            raise CheckpointError(f'{mismatch}: board rank {c.board_rank}: {e}') from None
    return supernet.eval()


def _depths_from_keys(sd: Iterable[str]) -> tuple[int, ...]:
    """Layers per searchable stage of a supernet state dict (``blocks.0`` and the last block are fixed)."""
    layers: dict[int, set[int]] = {}
    for k in sd:
        m = re.match(r'blocks\.(\d+)\.(\d+)\.', k)
        if m:
            layers.setdefault(int(m.group(1)), set()).add(int(m.group(2)))
    if not layers:
        return ()
    last = max(layers)
    return tuple(len(layers.get(b, ())) for b in range(1, last))


def select_candidates(board: Sequence[Candidate], macs_range: tuple[float, float] | None = None,
                      top: int | None = None, latency_range: tuple[float, float] | None = None
                      ) -> tuple[list[Candidate], list[dict[str, Any]]]:
    """Board paths to fine-tune: those inside ``macs_range`` and ``latency_range`` (when known; the
    latency a path's board entry recorded), then the best ``top``.

    Returns (selected, skipped); each skipped item says why, for the ranking file.
    """
    if top is not None and top < 1:
        raise ConfigError(f'--top {top}: must be at least 1')
    selected, skipped = [], []
    for c in board:
        if macs_range is not None and not macs_range[0] <= c.macs <= macs_range[1]:
            skipped.append(dict(_describe(c), reason=f'MACs outside the search range '
                                f'{macs_range[0] / 1e6:g}-{macs_range[1] / 1e6:g}M'))
        elif latency_range is not None and not (c.latency is not None
                                                and latency_range[0] <= c.latency <= latency_range[1]):
            skipped.append(dict(_describe(c), reason=f'predicted latency {c.latency} outside the search range '
                                f'{latency_range[0]:g}-{latency_range[1]:g} ms'))
        elif top is not None and len(selected) >= top:
            skipped.append(dict(_describe(c), reason=f'not in the top {top}'))
        else:
            selected.append(c)
    if not selected:
        also = '' if latency_range is None else f' and latency range {latency_range} ms'
        raise ConfigError(f'no board path is inside the search\'s MACs range {macs_range}{also}; '
                          'pass --ignore-macs-range to fine-tune them anyway')
    return selected, skipped


def export_inherited(supernet: Any, cand: Candidate, path: 'str | os.PathLike', source: str) -> Path:
    """The path's inherited weights as a retrain-style checkpoint (``CreamBackbone`` reads its arch)."""
    return save_subnet_checkpoint(path, supernet.subnet_state_dict(cand.arch), cand.arch,
                                  source='supernet', search_checkpoint=source, board_rank=cand.board_rank,
                                  board_acc=cand.acc)


# ---- ranking ---------------------------------------------------------------------------------------
def _describe(c: Candidate) -> dict[str, Any]:
    return {'board_rank': c.board_rank, 'hash': c.arch.hash, 'arch_str': str(c.arch), 'macs': c.macs,
            'params': c.arch.params, 'board_acc': c.acc, 'board_step': c.step,
            **({} if c.latency is None else {'latency_ms': c.latency}), 'arch': c.arch.to_dict()}


def candidate_record(c: Candidate, bbox: Mapping[str, float], **extra: Any) -> dict[str, Any]:
    """A finished candidate as stored in ``results.json`` and shown in the ranking (``bbox``: mAP, mAP50)."""
    return dict(_describe(c), bbox_mAP=float(bbox['bbox_mAP']), mAP50=float(bbox['mAP50']), **extra)


def rank_records(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Best bbox mAP first; ties go to the higher mAP50, then to the better board rank."""
    rows = sorted((dict(r) for r in records), key=lambda r: (-r['bbox_mAP'], -r['mAP50'], r['board_rank']))
    for i, r in enumerate(rows, 1):
        r['rank'] = i
    return rows


def ranking_markdown(rows: Sequence[Mapping[str, Any]], title: str = '') -> str:
    """The ranked table people read (``ranking.md``)."""
    head = ['| rank | board rank | arch | MACs (M) | params (M) | board acc (%) | bbox mAP | mAP50 |',
            '|---:|---:|---|---:|---:|---:|---:|---:|']
    body = [f'| {r["rank"]} | {r["board_rank"]} | `{r["arch_str"].replace("|", "/")}` | {r["macs"] / 1e6:.1f} | '
            f'{r["params"] / 1e6:.2f} | {r["board_acc"]:.2f} | {r["bbox_mAP"]:.3f} | {r["mAP50"]:.3f} |'
            for r in rows]
    return '\n'.join(([title, ''] if title else []) + head + body) + '\n'


__all__ = ['Candidate', 'read_board', 'find_search_checkpoint', 'load_supernet',
           'select_candidates', 'export_inherited', 'candidate_record', 'rank_records', 'ranking_markdown']
