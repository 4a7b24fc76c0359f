"""The architecture type and its file format — the one currency between search, retrain and detection.

An arch file (JSON or YAML) records the ops each layer really has (per-stage depth included), the
resolution and class count it is meant for, its search space, and the MACs/params measured for it.
The measured numbers are re-computed and compared on load, so a hand-edited or stale file is caught
instead of silently describing another network.

A layer is one :class:`Op` or, in a multi-path (MixPath) arch, a tuple of distinct ops that run
side by side and are summed (``cream_det.models.mixed_op``). A multi-path layer is written as a
list of op names (``["k3e4", "k5e6"]``) and kept in the space's choice order, so one network has
one spelling; a one-element list is the single op. Single-path archs serialise exactly as before
(format ``cream_det.arch/1``); a file with a multi-path layer says ``cream_det.arch/2``, so a
reader that predates multi-path layers refuses it by its format instead of misreading it.

A file written by a search that had a latency table also records ``latency``: the table's predicted
ms beside the MACs and where it holds (``{predicted_ms, device, device_name, runtime, threads, batch,
resolution}``, :meth:`cream_det.models.latency.LatencyTable.arch_record`). It belongs to one device, so
it is kept as written (only its shape is checked on load) and is not part of the arch; files
without it read as before.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import ArchError, CreamDetError
from .codes import Layer, PathCodes, arch_cost
from .spec import CREAM_SPACE, MAX_MASK_OPS, Op, SearchSpace, get_space, is_registered

FORMAT = 'cream_det.arch/1'
#: the format of files with at least one multi-path layer (read by this version alongside FORMAT)
FORMAT_MULTIPATH = 'cream_det.arch/2'


@dataclass(frozen=True)
class Arch:
    """A concrete subnet of a search space."""

    stages: tuple[tuple[Layer, ...], ...]
    resolution: int = 224
    num_classes: int = 1000
    space: SearchSpace = CREAM_SPACE
    name: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        stages = tuple(tuple(_as_layer(o, f'stages[{s}][{i}]') for i, o in enumerate(st))
                       for s, st in enumerate(self.stages))
        sp = self.space
        if len(stages) != sp.num_stages:
            raise ArchError(f'stages: {len(stages)} stages given, search space {sp.name} has {sp.num_stages}')
        for s, (ops, st) in enumerate(zip(stages, sp.stages)):
            if not st.min_depth <= len(ops) <= st.max_depth:
                raise ArchError(f'stages[{s}]: depth {len(ops)} outside [{st.min_depth}, {st.max_depth}] '
                                f'of stage {s + 1} in search space {sp.name}')
            for i, layer in enumerate(ops):
                for j, op in enumerate(_ops_of(layer)):
                    if op not in sp._op_index:
                        where = f'stages[{s}][{i}]' + (f'[{j}]' if isinstance(layer, tuple) else '')
                        raise ArchError(f'{where}: op {op.name} is not in search space {sp.name} '
                                        f'(ops: {", ".join(o.name for o in sp.ops)})')
        # multi-path layers in the space's choice order: one network, one spelling (and one hash)
        stages = tuple(tuple(layer if isinstance(layer, Op) else tuple(sorted(layer, key=sp.op_index))
                             for layer in st) for st in stages)
        object.__setattr__(self, 'stages', stages)
        if not isinstance(self.resolution, int) or self.resolution <= 0 \
                or self.resolution % sp.resolution_multiple:
            raise ArchError(f'resolution: {self.resolution!r} is not a positive multiple of {sp.resolution_multiple}')
        if not isinstance(self.num_classes, int) or self.num_classes < 1:
            raise ArchError(f'num_classes: {self.num_classes!r} must be a positive integer')

    # ---- views ------------------------------------------------------------------------------------
    @property
    def depths(self) -> tuple[int, ...]:
        return tuple(len(s) for s in self.stages)

    @property
    def is_multipath(self) -> bool:
        """Whether some layer runs several ops at once (a MixPath arch)."""
        return any(isinstance(layer, tuple) for st in self.stages for layer in st)

    @property
    def max_paths(self) -> int:
        """The most ops any layer runs (1 for a single-path arch)."""
        return max((len(_ops_of(layer)) for st in self.stages for layer in st), default=1)

    def layer_ops(self) -> tuple[tuple[tuple[Op, ...], ...], ...]:
        """Per stage, per layer, the tuple of ops it runs (one for a single-op layer)."""
        return tuple(tuple(_ops_of(layer) for layer in st) for st in self.stages)

    def layer_indices(self) -> tuple[tuple[tuple[int, ...], ...], ...]:
        """:meth:`layer_ops` as choice indices (ascending)."""
        return tuple(tuple(tuple(self.space.op_index(o) for o in ops) for ops in st) for st in self.layer_ops())

    def require_single_path(self, what: str, fix: str = '') -> 'Arch':
        """Return self, or raise the one error every single-path-only consumer gives a MixPath arch."""
        where = next(((s, i, layer) for s, st in enumerate(self.stages) for i, layer in enumerate(st)
                      if isinstance(layer, tuple)), None)
        if where is not None:
            s, i, layer = where
            raise ArchError(f'arch {self.name or self.hash} is a multi-path (MixPath) arch (stage {s + 1} layer '
                            f'{i + 1} runs {"+".join(o.name for o in layer)}); {what} takes one op per layer'
                            + (f' — {fix}' if fix else ''))
        return self

    def choice_indices(self) -> list[list[int]]:
        """Per-stage op indices in the space's choice order (single-path archs)."""
        self.require_single_path('choice_indices()', 'use layer_indices()')
        return [[self.space.op_index(o) for o in st] for st in self.stages]

    def encode(self) -> np.ndarray:
        """Fixed-length int8 vector over the space's layer slots; -1 marks an absent layer.

        This is the form the vectorised FLOPs table and the samplers work on (single-path archs;
        multi-path ones have :meth:`encode_mask`).
        """
        self.require_single_path('encode()', 'use encode_mask()')
        out = np.full(self.space.max_layers, -1, dtype=np.int8)
        off = 0
        for ops, st in zip(self.choice_indices(), self.space.stages):
            out[off:off + len(ops)] = ops
            off += st.max_depth
        return out

    @classmethod
    def from_code(cls, code: Sequence[int], codes: PathCodes, resolution: int = 224,
                  num_classes: int = 1000) -> 'Arch':
        """The arch a code of the kind ``codes`` writes (its space's; absent slots skipped)."""
        return cls(codes.layers(code), resolution, num_classes, codes.space)

    @classmethod
    def decode(cls, code: Sequence[int], space: SearchSpace = CREAM_SPACE, resolution: int = 224,
               num_classes: int = 1000) -> 'Arch':
        """Inverse of :meth:`encode` (absent slots, -1, are skipped)."""
        return cls.from_code(code, PathCodes(space), resolution, num_classes)

    def encode_mask(self) -> np.ndarray:
        """Fixed-length int32 vector over the layer slots: bit j set when the layer runs op j; 0 = absent.

        The multi-path counterpart of :meth:`encode` (any arch has one): what MixPath's sampler,
        cost table, supernet and evolution work on. A single-op layer is a one-bit mask.
        """
        if len(self.space.ops) > MAX_MASK_OPS:
            raise ArchError(f'search space {self.space.name} has {len(self.space.ops)} ops; multi-path codes '
                            f'address at most {MAX_MASK_OPS}')
        out = np.zeros(self.space.max_layers, dtype=np.int32)
        off = 0
        for layers, st in zip(self.layer_indices(), self.space.stages):
            for i, idx in enumerate(layers):
                out[off + i] = sum(1 << j for j in idx)
            off += st.max_depth
        return out

    @classmethod
    def decode_mask(cls, code: Sequence[int], space: SearchSpace = CREAM_SPACE, resolution: int = 224,
                    num_classes: int = 1000) -> 'Arch':
        """Inverse of :meth:`encode_mask` (absent slots, 0, are skipped)."""
        return cls.from_code(code, PathCodes(space, len(space.ops)), resolution, num_classes)

    def block_string(self, stage: int, index: int, op: Op) -> str:
        """timm block string of ``op`` at layer ``index`` of searchable stage ``stage`` (0-based)."""
        st = self.space.stages[stage]
        return (f'ir_r1_k{op.kernel}_s{st.stride if index == 0 else 1}_e{op.expansion}'
                f'_c{st.out_channels}_se{self.space.se_ratio:g}')

    def block_strings(self) -> list[list[str]]:
        """The arch in timm's block-string notation, one list per stage of the built network.

        Single-path archs only: a multi-path layer has no block string (the subnet builder builds
        its :meth:`skeleton` and puts a multi-path block at those layers).
        """
        self.require_single_path('block_strings()', 'build it with cream_det.models.build_subnet')
        sp = self.space
        return ([[sp.first_block]]
                + [[self.block_string(s, i, o) for i, o in enumerate(ops)] for s, ops in enumerate(self.stages)]
                + [[f'cn_r1_k1_s1_c{sp.last_channels}']])

    def skeleton(self) -> 'Arch':
        """The single-path arch with each multi-path layer replaced by its first op (same layout)."""
        if not self.is_multipath:
            return self
        return self.with_(stages=tuple(tuple(_ops_of(layer)[0] for layer in st) for st in self.stages))

    @property
    def hash(self) -> str:
        """Stable short id of the network (ops, resolution, classes, space); the name is not part of it."""
        key = json.dumps([self.space.name, self._stage_names(),
                          self.resolution, self.num_classes], separators=(',', ':'))
        return hashlib.sha256(key.encode()).hexdigest()[:10]

    def with_(self, **changes: Any) -> 'Arch':
        """Copy with e.g. another resolution or class count (re-validated)."""
        d = dict(stages=self.stages, resolution=self.resolution, num_classes=self.num_classes,
                 space=self.space, name=self.name)
        d.update(changes)
        return Arch(**d)

    def _stage_names(self) -> list[list[Any]]:
        """Op names per layer; a multi-path layer is a list of names (the file format)."""
        return [[layer.name if isinstance(layer, Op) else [o.name for o in layer] for layer in st]
                for st in self.stages]

    def __str__(self) -> str:
        body = ' | '.join(' '.join('+'.join(o.name for o in _ops_of(layer)) for layer in s) for s in self.stages)
        return f'{self.name or self.hash}@{self.resolution}: {body}'

    # ---- cost -------------------------------------------------------------------------------------
    @property
    def macs(self) -> int:
        return arch_cost(self).macs

    @property
    def params(self) -> int:
        return arch_cost(self).params

    # ---- (de)serialisation -----------------------------------------------------------------------
    def to_dict(self, latency: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The file's fields; ``latency``: a latency table's record of this arch (see the module docstring)."""
        cost = arch_cost(self)
        d: dict[str, Any] = {'format': FORMAT_MULTIPATH if self.is_multipath else FORMAT}
        if self.name:
            d['name'] = self.name
        d['space'] = self.space.name
        if not is_registered(self.space):
            d['space_spec'] = self.space.to_dict()
        d.update(resolution=self.resolution, num_classes=self.num_classes,
                 stages=self._stage_names(),
                 macs=cost.macs, params=cost.params, hash=self.hash)
        if latency is not None:
            d['latency'] = dict(_checked_latency(latency))
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], check_cost: bool = True) -> 'Arch':
        if not isinstance(d, Mapping):
            raise ArchError(f'an arch must be a mapping, got {type(d).__name__}')
        fmt = d.get('format', FORMAT)
        if fmt not in (FORMAT, FORMAT_MULTIPATH):
            raise ArchError(f"format: '{fmt}' is not '{FORMAT}' (or '{FORMAT_MULTIPATH}' with multi-path layers)")
        unknown = set(d) - {'format', 'name', 'space', 'space_spec', 'resolution', 'num_classes', 'stages',
                            'macs', 'params', 'hash', 'latency'}
        if unknown:
            raise ArchError(f'unknown field(s): {", ".join(sorted(unknown))}')
        if 'stages' not in d:
            raise ArchError("missing field 'stages'")
        if 'latency' in d:
            _checked_latency(d['latency'])
        try:
            space = get_space(d['space_spec']) if 'space_spec' in d else get_space(d.get('space', CREAM_SPACE.name))
        except CreamDetError as e:
            raise ArchError(f'space: {e}') from None
        if 'space_spec' in d and d.get('space', space.name) != space.name:
            raise ArchError(f"space: '{d['space']}' disagrees with space_spec name '{space.name}'")
        stages = d['stages']
        if not isinstance(stages, list) or not all(isinstance(s, list) for s in stages):
            raise ArchError('stages: must be a list of lists of op names such as "k5e6" '
                            '(a multi-path layer: a list of names such as ["k3e4", "k5e6"])')
        arch = cls(tuple(tuple(s) for s in stages), d.get('resolution', 224), d.get('num_classes', 1000),
                   space, d.get('name'))
        if check_cost:
            for key in ('macs', 'params'):
                if key in d and d[key] != getattr(arch, key):
                    raise ArchError(f'{key}: the file records {d[key]:,} but this arch measures '
                                    f'{getattr(arch, key):,}; the stages were edited or the file comes from '
                                    f'another counting convention — delete the field to re-measure')
        return arch

    def save(self, path: 'str | os.PathLike', latency: Mapping[str, Any] | None = None) -> Path:
        """Write JSON (or YAML for .yaml/.yml) atomically; ``latency``: a latency table's record of the arch."""
        from ..utils.io import atomic_write_text
        path = Path(path)
        d = self.to_dict(latency)
        if path.suffix.lower() in ('.yaml', '.yml'):
            import yaml
            text = yaml.safe_dump(d, sort_keys=False, default_flow_style=None)
        else:
            text = _dumps_json(d)
        atomic_write_text(path, text)
        return path

    @classmethod
    def load(cls, path: 'str | os.PathLike', check_cost: bool = True) -> 'Arch':
        path = Path(path)
        if not path.is_file():
            raise ArchError(f'{path}: arch file not found')
        text = path.read_text(encoding='utf-8')
        from ..utils.io import parse_json_or_yaml
        try:
            data = parse_json_or_yaml(text, path)
        except Exception as e:  # json.JSONDecodeError, yaml.YAMLError
            raise ArchError(f'{path}: not valid {"YAML" if path.suffix.lower() in (".yaml", ".yml") else "JSON"}: '
                            f'{e}') from None
        try:
            return cls.from_dict(data, check_cost=check_cost)
        except ArchError as e:
            raise ArchError(f'{path}: {e}') from None

    # ---- the authors' notation --------------------------------------------------------------------
    @classmethod
    def from_choice_list(cls, choices: Sequence[Sequence[int]], resolution: int = 224, num_classes: int = 1000,
                         space: SearchSpace = CREAM_SPACE, name: str | None = None) -> 'Arch':
        """Read an official choice list such as ``[[0], [3], [3, 1], [3, 3], [3, 3, 3], [3, 3], [0]]``.

        The list may include the fixed first and last stages (``[[0]]`` each) or only the searchable
        ones. As in the authors' child-net generator, a stage with a single block keeps its template
        op whatever index it names: that is the network their checkpoints contain.
        """
        choices = [list(c) for c in choices]
        n = space.num_stages
        if len(choices) == n + 2:
            if choices[0] != [0] or choices[-1] != [0]:
                raise ArchError(f'choice list: with {n + 2} entries the first and last must be [0] (fixed stages)')
            choices = choices[1:-1]
        if len(choices) != n:
            raise ArchError(f'choice list: {len(choices)} stages given, expected {n} (or {n + 2} with the fixed ones)')
        stages = []
        for s, (idx, st) in enumerate(zip(choices, space.stages)):
            for i, c in enumerate(idx):
                if not isinstance(c, (int, np.integer)) or not 0 <= c < len(space.ops):
                    raise ArchError(f'choice list: stage {s + 1} index {i} is {c!r}, expected 0..{len(space.ops) - 1}')
            stages.append((st.template,) if len(idx) == 1 else tuple(space.ops[c] for c in idx))
        return cls(tuple(stages), resolution, num_classes, space, name)


def _checked_latency(latency: Any) -> Mapping[str, Any]:
    """An arch file's ``latency`` record: a mapping with a non-negative ``predicted_ms``."""
    ms = latency.get('predicted_ms') if isinstance(latency, Mapping) else None
    if isinstance(ms, bool) or not isinstance(ms, (int, float)) or not ms >= 0:
        raise ArchError(f'latency: {latency!r} should be a mapping with predicted_ms (a number of ms >= 0) and the '
                        "table's device, runtime, threads, batch and resolution; delete the field if in doubt")
    return latency


def _dumps_json(d: Mapping[str, Any]) -> str:
    """Indented JSON with one line per stage, so a diff of two arch files reads layer by layer."""
    lines = [f'  {json.dumps(k)}: {json.dumps(v)}' if k != 'stages' else
             '  "stages": [\n' + ',\n'.join(f'    {json.dumps(st)}' for st in v) + '\n  ]'
             for k, v in d.items()]
    return '{\n' + ',\n'.join(lines) + '\n}\n'


def _ops_of(layer: Layer) -> tuple[Op, ...]:
    return (layer,) if isinstance(layer, Op) else layer


def _as_layer(o: Any, where: str) -> Layer:
    """One op, or a multi-path layer: a list/tuple of op-likes (a pair of ints is one op, ``(k, e)``)."""
    if isinstance(o, (list, tuple)) and not (len(o) == 2 and all(isinstance(v, int) for v in o)):
        ops = tuple(_as_op(v, f'{where}[{j}]') for j, v in enumerate(o))
        if not ops:
            raise ArchError(f'{where}: an empty multi-path layer; list at least one op')
        dup = next((op for j, op in enumerate(ops) if op in ops[:j]), None)
        if dup is not None:
            raise ArchError(f'{where}: op {dup.name} listed twice; a multi-path layer runs distinct ops')
        return ops[0] if len(ops) == 1 else ops
    return _as_op(o, where)


def _as_op(o: Any, where: str) -> Op:
    if isinstance(o, Op):
        return o
    if isinstance(o, str):
        try:
            return Op.parse(o)
        except ValueError as e:
            raise ArchError(f'{where}: {e}') from None
    if isinstance(o, (list, tuple)) and len(o) == 2 and all(isinstance(v, int) for v in o):
        return Op(*o)
    raise ArchError(f"{where}: {o!r} is not an op; write 'k<kernel>e<expansion>', e.g. 'k5e6'")
