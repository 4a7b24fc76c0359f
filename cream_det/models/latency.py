"""A latency lookup table: milliseconds of every (layer slot, op) of a space, measured on one device.

The table has the shape of the MACs model (:class:`cream_det.space.flops.CostTable`): one row per
layer slot of the space at its maximum depths, one column per op in choice order plus a final
all-zero column, so the ``-1`` that marks an absent layer in :meth:`Arch.encode` costs 0 ms with no
special case, and ``fixed_ms`` (stem, the first depthwise-separable block, the last 1x1 conv, the
head). An arch's predicted latency is then the same gather-and-sum over its code as its MACs —
:meth:`LatencyTable.predict_codes` prices millions of codes per second, which is what a later
``latency_range`` next to ``macs_range`` (samplers, board, evolution) needs.

Why a table and not MACs: depthwise k7 convolutions and SE layers cost far more time per MAC than
pointwise ones, and how much more depends on the device, the runtime, the threads and the input
size; so the table is measured where the net will run (:mod:`.latency_measure`), as FBNet and
ProxylessNAS do. The sum of blocks timed one by one misses what a whole forward adds (a block's
weights and input are no longer hot in the caches when the previous block ran); an optional linear
:class:`Correction` (global: ``ms = scale * sum + offset``; or one scale per stage), fitted on archs
measured end to end, absorbs it. ``benchmarks/latency_table.py`` reports the plain and corrected sums.

A table is valid only for the space (name and a digest of its spec), input size, batch and class
count it was measured at; :meth:`LatencyTable.check` refuses another space or input size (and class
count, batch or mode, where the caller gives them) with one error naming both.

Two modes (``mode``): ``classifier`` times the whole classification net (its head included) on a
square ``resolution``; ``backbone`` times what a detector's backbone (:class:`cream_det.det.backbone.
CreamBackbone`, timm's features-only net) runs — the stem, every block, the last 1x1 conv, no head —
on an input of any ``(height, width)``, e.g. the 800 x 1344 a 1333 x 800 COCO image becomes. A
backbone table prices an arch's backbone at the table's input size whatever resolution the arch was
searched at, and has no class count. Files written before the modes (an int ``resolution``, no
``mode``) read as classifier tables.
The file (JSON, ``format: cream_det.latency/1``) has one writer, :meth:`LatencyTable.save`, and
one reader, :meth:`LatencyTable.load`.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import CreamDetError, LatencyTableError, SpaceError
from ..space import Arch, SearchSpace, get_space
from ..utils.io import parse_json_or_yaml

FORMAT = 'cream_det.latency/1'
#: the parts every net of a space runs whatever its arch (their ms add up to ``fixed_ms``)
FIXED_PARTS = ('stem', 'first_block', 'last_conv', 'head')
#: what a table times: the classification net, or a detector's backbone (no pool, 1x1 conv to head_channels,
#: classifier: timm's features-only net stops after the last 1x1 conv whatever its out_indices)
MODES = ('classifier', 'backbone')
MODE_PARTS = {'classifier': FIXED_PARTS, 'backbone': FIXED_PARTS[:3]}
#: a file's required fields (``correction`` and ``created`` may be absent or null)
_FIELDS = ('format', 'space', 'space_digest', 'space_spec', 'resolution', 'batch', 'num_classes', 'threads',
           'device', 'device_name', 'runtime', 'versions', 'warmup', 'repeats', 'fixed_ms', 'slots')


def input_hw(size: 'int | Sequence[int]') -> tuple[int, int]:
    """``(height, width)`` of an input size given as one int (square) or a pair; one clear error otherwise."""
    hw = (size, size) if isinstance(size, (int, np.integer)) else tuple(size) if isinstance(size, Sequence) else ()
    if len(hw) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0 for v in hw):
        raise LatencyTableError(f'input size {size!r}: one positive int (square) or (height, width)')
    return int(hw[0]), int(hw[1])


def size_text(size: 'int | Sequence[int]') -> str:
    """``'224 px'`` or ``'800x1344 px'`` (height x width)."""
    h, w = input_hw(size)
    return f'{h} px' if h == w else f'{h}x{w} px'


def size_args(size: 'int | Sequence[int]') -> str:
    """The ``tools/latency_table.py`` option that measures at ``size``."""
    h, w = input_hw(size)
    return f'--res {h}' if h == w else f'--input-size {h} {w}'


def resolve_space(name_or_file: str) -> SearchSpace:
    """A space from a command line: a registered name, or a JSON/YAML file holding a space spec (or a file
    that carries one as ``space_spec``: a latency table, an arch file of an unregistered space)."""
    path = Path(name_or_file)
    if not path.is_file():
        try:
            return get_space(name_or_file)
        except CreamDetError as e:
            raise SpaceError(f'{e}; or give a JSON/YAML file holding a space spec') from None
    try:
        data = parse_json_or_yaml(path.read_text(encoding='utf-8'), path)
    except Exception as e:  # OSError, UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError
        raise SpaceError(f'{path}: not a readable JSON/YAML space spec ({e})') from None
    if isinstance(data, Mapping) and 'space_spec' in data:
        data = data['space_spec']
    if not isinstance(data, Mapping):
        raise SpaceError(f'{path}: a space spec is a mapping (name, stages, ops, ...), got {type(data).__name__}')
    try:
        return get_space(data)
    except SpaceError as e:
        raise SpaceError(f'{path}: {e}') from None


def space_digest(space: SearchSpace) -> str:
    """Short digest of everything in a space's spec that shapes its networks (its description excluded)."""
    spec = {k: v for k, v in space.to_dict().items() if k != 'description'}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]


#: the corrections a table may hold: one scale for the whole sum, or one per stage's layers
CORRECTIONS = ('global', 'stage')


@dataclass(frozen=True)
class Correction:
    """A linear correction of the table's sum, fitted on ``fit_archs`` archs measured whole.

    ``global``: ``ms = scales[0] * (fixed + slots) + offset``. ``stage``: ``ms = fixed + offset +
    sum over stages s of scales[s] * (stage s's slots)``, for when blocks of early (large-map) and
    late stages miss their in-network time by different factors. Either way every scale is > 0, so
    it folds into the entries (:attr:`LatencyTable.entries`): prediction stays one gather-and-sum,
    bounds stay exact, and a global one cannot change the ranking of archs.
    """

    kind: str
    scales: tuple[float, ...]
    offset: float
    fit_archs: int

    def to_dict(self) -> dict[str, Any]:
        return {'kind': self.kind, 'scales': list(self.scales), 'offset': self.offset, 'fit_archs': self.fit_archs}


def fit_correction(table: 'LatencyTable', codes: np.ndarray, measured_ms: Sequence[float],
                   kind: str = 'global') -> Correction:
    """Least-squares correction of ``table``'s plain sums for archs (``(N, slots)`` codes) measured whole.

    Needs one arch more than the correction has parameters. A scale that is not positive would
    reverse part of the table's ranking: that means the measurements are noise (or the archs barely
    differ), so it is refused rather than stored.
    """
    if kind not in CORRECTIONS:
        raise LatencyTableError(f'correction {kind!r}: one of {", ".join(CORRECTIONS)}')
    codes, y = np.atleast_2d(np.asarray(codes)), np.asarray(measured_ms, dtype=np.float64)
    parts = table.stage_sums(codes)
    if kind == 'global':
        x, target = parts.sum(axis=1, keepdims=True) + table.fixed_ms, y
    else:
        x, target = parts, y - table.fixed_ms
    n_params = x.shape[1] + 1
    if y.shape != (codes.shape[0],) or y.size < n_params + 1:
        raise LatencyTableError(f'a {kind} correction needs >= {n_params + 1} archs with a code and a measurement '
                                f'each, got {codes.shape[0]} codes and {y.size} measurements')
    sol, *_ = np.linalg.lstsq(np.column_stack([x, np.ones(len(y))]), target, rcond=None)
    scales, offset = tuple(float(v) for v in sol[:-1]), float(sol[-1])
    if not min(scales) > 0:
        shown = ', '.join(f'{v:.3g}' for v in scales)
        raise LatencyTableError(f'the fitted {kind} correction has a scale <= 0 ({shown}): '
                                'the measured archs do not grow with their table entries; measure again on an idle '
                                'machine (more repeats), with more archs, or use the global correction')
    return Correction(kind, scales, offset, int(y.size))


def fit_scale(table: 'LatencyTable', codes: np.ndarray, measured_ms: Sequence[float]) -> Correction:
    """A global correction with no offset: the median ratio of measured to summed ms.

    For a quick calibration on a busy machine (a search's run-time table): a least-squares line through a
    few noisy points can take an offset that predicts fast archs below 0 ms, and one outlier moves it; a
    median ratio keeps every prediction positive, the ranking unchanged, and ignores a stray timing."""
    codes, y = np.atleast_2d(np.asarray(codes)), np.asarray(measured_ms, dtype=np.float64)
    if y.shape != (codes.shape[0],) or y.size < 1:
        raise LatencyTableError(f'a scale needs >= 1 arch with a code and a measurement each, got {codes.shape[0]} '
                                f'codes and {y.size} measurements')
    scale = float(np.median(y / table.raw_of(codes)))
    if not scale > 0:
        raise LatencyTableError(f'the fitted scale is {scale:.3g}, not > 0: the measurements are not times')
    return Correction('global', (scale,), 0.0, int(y.size))


def prediction_errors(predicted: Sequence[float], measured: Sequence[float]) -> dict[str, float]:
    """Mean and worst absolute error of ``predicted`` against ``measured``, in % of the measurement."""
    p, m = np.asarray(predicted, dtype=np.float64), np.asarray(measured, dtype=np.float64)
    err = np.abs(p - m) / m * 100.0
    return {'mean_abs_pct': float(err.mean()), 'worst_abs_pct': float(err.max())}


@dataclass(frozen=True, eq=False)
class LatencyTable:
    """Measured milliseconds of every (layer slot, op) of ``space`` plus its fixed parts.

    ``ms`` is ``(space.max_layers, len(space.ops) + 1)``, the last column 0 (absent layer);
    ``input_shapes[slot]`` is the ``(batch, channels, height, width)`` a slot's block was timed on.
    ``resolution`` is the input size, an int (square) or ``(height, width)``, kept as an int when
    square; ``input_size`` is always ``(height, width)``. ``fixed`` holds the parts of ``mode``
    (:data:`MODE_PARTS`).
    """

    space: SearchSpace
    resolution: 'int | tuple[int, int]'
    batch: int
    num_classes: int
    threads: int
    device: str
    device_name: str
    runtime: str
    versions: Mapping[str, str]
    warmup: int
    repeats: int
    fixed: Mapping[str, float]
    ms: np.ndarray = field(repr=False)
    input_shapes: tuple[tuple[int, ...], ...] = field(repr=False)
    correction: Correction | None = None
    created: str | None = None
    mode: str = 'classifier'
    #: an anchored table's anchor ms (``measure_table(anchor=True)``): archs checked against this table are
    #: timed against the same anchor and priced at this figure (``table_timing`` passes it); None: plain timing
    anchor_ms: float | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise LatencyTableError(f'latency table mode {self.mode!r}: one of {", ".join(MODES)}')
        h, w = input_hw(self.resolution)
        object.__setattr__(self, 'resolution', h if h == w else (h, w))
        object.__setattr__(self, 'input_size', (h, w))
        ms = np.asarray(self.ms, dtype=np.float64)
        want = (self.space.max_layers, len(self.space.ops) + 1)
        if ms.shape != want:
            raise LatencyTableError(f'latency table of space {self.space.name}: {ms.shape} entries, the space has '
                                    f'{want} (slots, ops + absent)')
        if not np.isfinite(ms).all() or (ms < 0).any() or ms[:, -1].any():
            raise LatencyTableError(f'latency table of space {self.space.name}: entries must be finite, >= 0, '
                                    'and 0 in the absent-layer column')
        if set(self.fixed) != set(MODE_PARTS[self.mode]):
            raise LatencyTableError(f'latency table of space {self.space.name}: fixed parts {sorted(self.fixed)}, '
                                    f'expected {list(MODE_PARTS[self.mode])} ({self.mode} mode)')
        if self.anchor_ms is not None and not (np.isfinite(self.anchor_ms) and self.anchor_ms > 0):
            raise LatencyTableError(f'latency table anchor_ms {self.anchor_ms!r}: finite and > 0, or null')
        object.__setattr__(self, 'ms', ms)
        sp, c = self.space, self.correction
        object.__setattr__(self, '_rows', np.arange(sp.max_layers))
        stage_of_slot = np.repeat(np.arange(sp.num_stages), [st.max_depth for st in sp.stages])
        object.__setattr__(self, '_stage_of_slot', stage_of_slot)
        # the correction folded into the entries: what predict_codes and bounds gather
        if c is None:
            entries, fixed = ms, self.fixed_ms
        else:
            if c.kind not in CORRECTIONS or len(c.scales) != (1 if c.kind == 'global' else sp.num_stages) \
                    or not min(c.scales) > 0:
                raise LatencyTableError(f'correction {c.to_dict()}: a global one has 1 scale, a stage one '
                                        f'{sp.num_stages} (the stages of {sp.name}), all > 0')
            slot_scale = c.scales[0] if c.kind == 'global' else np.asarray(c.scales)[self._stage_of_slot][:, None]
            entries = ms * slot_scale
            fixed = (c.scales[0] * self.fixed_ms if c.kind == 'global' else self.fixed_ms) + c.offset
        object.__setattr__(self, 'entries', entries)
        object.__setattr__(self, 'entries_fixed', float(fixed))

    # ---- identity ---------------------------------------------------------------------------------
    @property
    def space_digest(self) -> str:
        return space_digest(self.space)

    def describe(self) -> str:
        """Where the table is valid, for errors and logs."""
        what = f'{self.num_classes} classes' if self.mode == 'classifier' else 'the backbone only (no head)'
        return (f'space {self.space.name} (spec digest {self.space_digest}) at {size_text(self.input_size)}, batch '
                f'{self.batch}, {what}')

    def check(self, space: SearchSpace, resolution: 'int | Sequence[int]', num_classes: int | None = None,
              batch: int | None = None, source: str = 'the latency table', mode: str | None = None) -> 'LatencyTable':
        """Return self, or one clear error naming both when asked to price another space or input size
        (``resolution``: an int, square, or ``(height, width)``), or class count / batch / mode where given
        (a backbone table has no head, so any class count fits it)."""
        asked = []
        if space.name != self.space.name or space_digest(space) != self.space_digest:
            asked.append(f'space {space.name} (spec digest {space_digest(space)})')
        if input_hw(resolution) != self.input_size:
            asked.append(size_text(resolution))
        if num_classes is not None and self.mode == 'classifier' and num_classes != self.num_classes:
            asked.append(f'{num_classes} classes')
        if batch is not None and batch != self.batch:
            asked.append(f'batch {batch}')
        if mode is not None and mode != self.mode:
            asked.append(f'the {mode} mode')
        if asked:
            flag = ' --mode backbone' if (mode or self.mode) == 'backbone' else ''
            raise LatencyTableError(
                f'{source} was measured for {self.describe()}, not for {", ".join(asked)}; measure a table '
                f'for it: python tools/latency_table.py --space {space.name} {size_args(resolution)}{flag} --out FILE')
        return self

    def check_search(self, space: SearchSpace, resolution: int, num_classes: int | None = None,
                     source: str = 'the latency table') -> 'LatencyTable':
        """Return self if it prices the archs of a search of ``space`` at ``resolution`` (and ``num_classes``):
        a classifier table only at that resolution and class count; a backbone table at any (it prices each
        arch's backbone at the table's own input size, where the detector will run it). One clear error else."""
        if self.mode == 'classifier':
            return self.check(space, resolution, num_classes, source=source)
        return self.check(space, self.input_size, source=source)

    # ---- prediction -------------------------------------------------------------------------------
    @property
    def fixed_ms(self) -> float:
        return float(sum(self.fixed[k] for k in MODE_PARTS[self.mode]))

    def raw_of(self, codes: np.ndarray) -> np.ndarray | float:
        """The plain sum of entries for archs given as ``(N, slots)`` codes of :meth:`Arch.encode` (or one row)."""
        return self._gather(self.ms, self.fixed_ms, codes)

    def predict_codes(self, codes: np.ndarray) -> np.ndarray | float:
        """Predicted ms of codes: the sum of entries, corrected when the table holds a correction."""
        return self._gather(self.entries, self.entries_fixed, codes)

    def stage_sums(self, codes: np.ndarray) -> np.ndarray:
        """``(N, stages)`` plain sums of each stage's slot entries (the fixed parts not included)."""
        codes = np.atleast_2d(np.asarray(codes))
        per_slot = np.stack([self.ms[slot].take(codes[:, slot], mode='wrap') for slot in range(codes.shape[1])], 1)
        return np.stack([per_slot[:, self._stage_of_slot == s].sum(1) for s in range(self.space.num_stages)], 1)

    def _gather(self, table: np.ndarray, fixed: float, codes: np.ndarray) -> np.ndarray | float:
        codes = np.asarray(codes)
        if codes.ndim == 1:
            return fixed + float(table[self._rows, codes].sum())
        total = np.full(codes.shape[0], fixed, dtype=np.float64)
        for slot in range(codes.shape[1]):        # one column at a time, as CostTable.macs_of
            total += table[slot].take(codes[:, slot], mode='wrap')
        return total

    def predict(self, arch: Arch) -> float:
        """Predicted ms of one single-path arch of this table's space: of the whole net at the arch's own
        resolution and class count (a classifier table, refused at another), or of its backbone at the
        table's input size (a backbone table, whatever resolution the arch was searched at)."""
        self.check_search(arch.space, arch.resolution, arch.num_classes)
        arch.require_single_path('a latency table', 'its entries time one op per layer')
        return float(self.predict_codes(arch.encode()))

    def arch_record(self, arch: Arch) -> dict[str, Any]:
        """What an arch file records of this table's prediction for ``arch`` (``Arch.save(latency=...)``):
        the predicted ms and where it holds."""
        return {'predicted_ms': self.predict(arch), 'device': self.device, 'device_name': self.device_name,
                'runtime': self.runtime, 'threads': self.threads, 'batch': self.batch, 'resolution': self.resolution,
                'mode': self.mode, 'corrected': self.correction is not None, 'anchored': self.anchor_ms is not None}

    def bounds(self, depths: Sequence[int] | None = None) -> tuple[float, float]:
        """(min, max) predicted ms over archs with the given per-stage depths (None: any valid depth)."""
        sp = self.space
        index = np.concatenate([np.arange(st.max_depth) for st in sp.stages])      # layer of each slot in its stage
        per_stage = [(st.min_depth, st.max_depth) for st in sp.stages] if depths is None else \
            [(int(d), int(d)) for d in depths]
        least, most = (np.asarray([p[k] for p in per_stage])[self._stage_of_slot] for k in (0, 1))
        ops = self.entries[:, :-1]
        return (self.entries_fixed + float(ops.min(axis=1)[index < least].sum()),
                self.entries_fixed + float(ops.max(axis=1)[index < most].sum()))

    def with_correction(self, correction: Correction | None) -> 'LatencyTable':
        return replace(self, correction=correction)

    # ---- the file ---------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        slots, slot = [], 0
        for s, st in enumerate(self.space.stages):
            for i in range(st.max_depth):
                slots.append({'stage': s + 1, 'layer': i + 1, 'stride': st.stride if i == 0 else 1,
                              'input_shape': list(self.input_shapes[slot]),
                              'ms': {op.name: float(self.ms[slot, j]) for j, op in enumerate(self.space.ops)}})
                slot += 1
        c = self.correction
        return {'format': FORMAT, 'space': self.space.name, 'space_digest': self.space_digest,
                'space_spec': self.space.to_dict(), 'mode': self.mode,
                'resolution': self.resolution if isinstance(self.resolution, int) else list(self.input_size),
                'batch': self.batch,
                'num_classes': self.num_classes, 'threads': self.threads, 'device': self.device,
                'device_name': self.device_name, 'runtime': self.runtime, 'versions': dict(self.versions),
                'warmup': self.warmup, 'repeats': self.repeats, 'created': self.created,
                'fixed_ms': {k: float(self.fixed[k]) for k in MODE_PARTS[self.mode]},
                'anchor_ms': self.anchor_ms,
                'correction': None if c is None else c.to_dict(),
                'slots': slots}

    def save(self, path: 'str | os.PathLike') -> Path:
        """Write the table as JSON, atomically (one slot per line, so two tables diff slot by slot)."""
        from ..utils.io import atomic_write_text
        d = self.to_dict()
        slots = d.pop('slots')
        body = json.dumps(d, indent=2)[:-2]
        text = body + ',\n  "slots": [\n' + ',\n'.join(f'    {json.dumps(s)}' for s in slots) + '\n  ]\n}\n'
        atomic_write_text(path, text)
        return Path(path)

    @classmethod
    def from_dict(cls, d: Any) -> 'LatencyTable':
        if not isinstance(d, Mapping):
            raise LatencyTableError(f'a latency table is a JSON object, got {type(d).__name__}')
        if d.get('format') != FORMAT:
            raise LatencyTableError(f"format: {d.get('format')!r} is not {FORMAT!r}")
        missing = [k for k in _FIELDS if k not in d]
        if missing:
            raise LatencyTableError(f'missing field(s): {", ".join(missing)}')
        try:
            space = SearchSpace.from_dict(d['space_spec'])
        except CreamDetError as e:
            raise LatencyTableError(f'space_spec: {e}') from None
        if space.name != d['space'] or space_digest(space) != d['space_digest']:
            raise LatencyTableError(f"space_spec disagrees with space {d['space']!r} / space_digest "
                                    f"{d['space_digest']!r}: the file was edited")
        slots = d['slots']
        if not isinstance(slots, list) or len(slots) != space.max_layers:
            got = len(slots) if isinstance(slots, list) else type(slots).__name__
            raise LatencyTableError(f'slots: {space.max_layers} entries expected (the layer slots of space '
                                    f'{space.name}), got {got}')
        try:
            ms = np.zeros((space.max_layers, len(space.ops) + 1))
            for slot, entry in enumerate(slots):
                for j, op in enumerate(space.ops):
                    ms[slot, j] = float(entry['ms'][op.name])
            shapes = tuple(tuple(int(v) for v in entry['input_shape']) for entry in slots)
            c = d.get('correction')
            corr = None if c is None else Correction(str(c['kind']), tuple(float(v) for v in c['scales']),
                                                     float(c['offset']), int(c['fit_archs']))
            mode = d.get('mode', 'classifier')       # files from before the modes are classifier tables
            if mode not in MODES:
                raise LatencyTableError(f'mode: {mode!r} is not one of {", ".join(MODES)}')
            res = d['resolution']
            return cls(space=space, resolution=int(res) if isinstance(res, (int, float, str)) else input_hw(res),
                       batch=int(d['batch']), mode=mode,
                       num_classes=int(d['num_classes']), threads=int(d['threads']), device=str(d['device']),
                       device_name=str(d['device_name']), runtime=str(d['runtime']),
                       versions=dict(d['versions']), warmup=int(d['warmup']), repeats=int(d['repeats']),
                       fixed={k: float(d['fixed_ms'][k]) for k in MODE_PARTS[mode]}, ms=ms, input_shapes=shapes,
                       correction=corr, created=d.get('created'),
                       anchor_ms=None if d.get('anchor_ms') is None else float(d['anchor_ms']))
        except (KeyError, TypeError, ValueError) as e:
            if isinstance(e, LatencyTableError):
                raise
            raise LatencyTableError(f'malformed entry: {type(e).__name__}: {e}') from None

    @classmethod
    def load(cls, path: 'str | os.PathLike', space: SearchSpace | None = None,
             resolution: 'int | Sequence[int] | None' = None, mode: str | None = None) -> 'LatencyTable':
        """Read a table file; with ``space``/``resolution`` (an int or ``(height, width)``)/``mode``, refuse one
        measured for another."""
        path = Path(path)
        fix = 'measure one with python tools/latency_table.py'
        if not path.is_file():
            raise LatencyTableError(f'{path}: latency table not found; {fix}')
        try:
            data = json.loads(path.read_text(encoding='utf-8'))
        except (ValueError, UnicodeDecodeError) as e:
            raise LatencyTableError(f'{path}: not valid JSON ({e}); {fix}') from None
        try:
            table = cls.from_dict(data)
        except LatencyTableError as e:
            raise LatencyTableError(f'{path}: {e}; {fix}') from None
        if space is not None or resolution is not None or mode is not None:
            table.check(space or table.space, table.resolution if resolution is None else resolution,
                        source=f'latency table {path}', mode=mode)
        return table


__all__ = ['CORRECTIONS', 'Correction', 'FIXED_PARTS', 'FORMAT', 'LatencyTable', 'MODES', 'MODE_PARTS',
           'fit_correction', 'fit_scale', 'input_hw', 'prediction_errors', 'resolve_space', 'size_args', 'size_text',
           'space_digest']
