"""The architecture type and its file format — the one currency between search, retrain and detection.

An arch file (JSON or YAML) records the ops each layer really has (per-stage depth included), the
resolution and class count it is meant for, its search space, and the MACs/params measured for it.
The measured numbers are re-computed and compared on load, so a hand-edited or stale file is caught
instead of silently describing another network.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from ..errors import ArchError, CreamDetError
from .spec import CREAM_SPACE, Op, SearchSpace, get_space, is_registered

FORMAT = 'cream_det.arch/1'


@dataclass(frozen=True)
class Arch:
    """A concrete subnet of a search space."""

    stages: tuple[tuple[Op, ...], ...]
    resolution: int = 224
    num_classes: int = 1000
    space: SearchSpace = CREAM_SPACE
    name: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        stages = tuple(tuple(_as_op(o, f'stages[{s}][{i}]') for i, o in enumerate(st))
                       for s, st in enumerate(self.stages))
        object.__setattr__(self, 'stages', stages)
        sp = self.space
        if len(stages) != sp.num_stages:
            raise ArchError(f'stages: {len(stages)} stages given, search space {sp.name} has {sp.num_stages}')
        for s, (ops, st) in enumerate(zip(stages, sp.stages)):
            if not st.min_depth <= len(ops) <= st.max_depth:
                raise ArchError(f'stages[{s}]: depth {len(ops)} outside [{st.min_depth}, {st.max_depth}] '
                                f'of stage {s + 1} in search space {sp.name}')
            for i, op in enumerate(ops):
                if op not in sp._op_index:
                    raise ArchError(f'stages[{s}][{i}]: op {op.name} is not in search space {sp.name} '
                                    f'(ops: {", ".join(o.name for o in sp.ops)})')
        if not isinstance(self.resolution, int) or self.resolution <= 0 \
                or self.resolution % sp.resolution_multiple:
            raise ArchError(f'resolution: {self.resolution!r} is not a positive multiple of {sp.resolution_multiple}')
        if not isinstance(self.num_classes, int) or self.num_classes < 1:
            raise ArchError(f'num_classes: {self.num_classes!r} must be a positive integer')

    # ---- views ------------------------------------------------------------------------------------
    @property
    def depths(self) -> tuple[int, ...]:
        return tuple(len(s) for s in self.stages)

    def choice_indices(self) -> list[list[int]]:
        """Per-stage op indices in the space's choice order."""
        return [[self.space.op_index(o) for o in st] for st in self.stages]

    def encode(self) -> np.ndarray:
        """Fixed-length int8 vector over the space's layer slots; -1 marks an absent layer.

        This is the form the vectorised FLOPs table and the samplers work on.
        """
        out = np.full(self.space.max_layers, -1, dtype=np.int8)
        off = 0
        for ops, st in zip(self.choice_indices(), self.space.stages):
            out[off:off + len(ops)] = ops
            off += st.max_depth
        return out

    @classmethod
    def decode(cls, code: Sequence[int], space: SearchSpace = CREAM_SPACE, resolution: int = 224,
               num_classes: int = 1000) -> 'Arch':
        stages, off = [], 0
        for st in space.stages:
            seg = [int(c) for c in code[off:off + st.max_depth]]
            stages.append(tuple(space.ops[c] for c in seg if c >= 0))
            off += st.max_depth
        return cls(tuple(stages), resolution, num_classes, space)

    def block_strings(self) -> list[list[str]]:
        """The arch in timm's block-string notation, one list per stage of the built network."""
        sp = self.space
        out = [[sp.first_block]]
        for ops, st in zip(self.stages, sp.stages):
            out.append([f'ir_r1_k{o.kernel}_s{st.stride if i == 0 else 1}_e{o.expansion}'
                        f'_c{st.out_channels}_se{sp.se_ratio:g}' for i, o in enumerate(ops)])
        out.append([f'cn_r1_k1_s1_c{sp.last_channels}'])
        return out

    @property
    def hash(self) -> str:
        """Stable short id of the network (ops, resolution, classes, space); the name is not part of it."""
        key = json.dumps([self.space.name, [[o.name for o in s] for s in self.stages],
                          self.resolution, self.num_classes], separators=(',', ':'))
        return hashlib.sha256(key.encode()).hexdigest()[:10]

    def with_(self, **changes: Any) -> 'Arch':
        """Copy with e.g. another resolution or class count (re-validated)."""
        d = dict(stages=self.stages, resolution=self.resolution, num_classes=self.num_classes,
                 space=self.space, name=self.name)
        d.update(changes)
        return Arch(**d)

    def __str__(self) -> str:
        body = ' | '.join(' '.join(o.name for o in s) for s in self.stages)
        return f'{self.name or self.hash}@{self.resolution}: {body}'

    # ---- cost -------------------------------------------------------------------------------------
    @property
    def macs(self) -> int:
        from .flops import arch_cost
        return arch_cost(self).macs

    @property
    def params(self) -> int:
        from .flops import arch_cost
        return arch_cost(self).params

    # ---- (de)serialisation -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        from .flops import arch_cost
        cost = arch_cost(self)
        d: dict[str, Any] = {'format': FORMAT}
        if self.name:
            d['name'] = self.name
        d['space'] = self.space.name
        if not is_registered(self.space):
            d['space_spec'] = self.space.to_dict()
        d.update(resolution=self.resolution, num_classes=self.num_classes,
                 stages=[[o.name for o in s] for s in self.stages],
                 macs=cost.macs, params=cost.params, hash=self.hash)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], check_cost: bool = True) -> 'Arch':
        if not isinstance(d, Mapping):
            raise ArchError(f'an arch must be a mapping, got {type(d).__name__}')
        fmt = d.get('format', FORMAT)
        if fmt != FORMAT:
            raise ArchError(f"format: '{fmt}' is not '{FORMAT}'")
        unknown = set(d) - {'format', 'name', 'space', 'space_spec', 'resolution', 'num_classes', 'stages',
                            'macs', 'params', 'hash'}
        if unknown:
            raise ArchError(f'unknown field(s): {", ".join(sorted(unknown))}')
        if 'stages' not in d:
            raise ArchError("missing field 'stages'")
        try:
            space = get_space(d['space_spec']) if 'space_spec' in d else get_space(d.get('space', CREAM_SPACE.name))
        except CreamDetError as e:
            raise ArchError(f'space: {e}') from None
        if 'space_spec' in d and d.get('space', space.name) != space.name:
            raise ArchError(f"space: '{d['space']}' disagrees with space_spec name '{space.name}'")
        stages = d['stages']
        if not isinstance(stages, list) or not all(isinstance(s, list) for s in stages):
            raise ArchError('stages: must be a list of lists of op names such as "k5e6"')
        arch = cls(tuple(tuple(s) for s in stages), d.get('resolution', 224), d.get('num_classes', 1000),
                   space, d.get('name'))
        if check_cost:
            for key in ('macs', 'params'):
                if key in d and d[key] != getattr(arch, key):
                    raise ArchError(f'{key}: the file records {d[key]:,} but this arch measures '
                                    f'{getattr(arch, key):,}; the stages were edited or the file comes from '
                                    f'another counting convention — delete the field to re-measure')
        return arch

    def save(self, path: 'str | os.PathLike') -> Path:
        """Write JSON (or YAML for .yaml/.yml) atomically."""
        from ..utils.io import atomic_write_text
        path = Path(path)
        d = self.to_dict()
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
        try:
            if path.suffix.lower() in ('.yaml', '.yml'):
                import yaml
                data = yaml.safe_load(text)
            else:
                data = json.loads(text)
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


def _dumps_json(d: Mapping[str, Any]) -> str:
    """Indented JSON with one line per stage, so a diff of two arch files reads layer by layer."""
    lines = [f'  {json.dumps(k)}: {json.dumps(v)}' if k != 'stages' else
             '  "stages": [\n' + ',\n'.join(f'    {json.dumps(st)}' for st in v) + '\n  ]'
             for k, v in d.items()]
    return '{\n' + ',\n'.join(lines) + '\n}\n'


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


def as_arch(arch: 'Arch | str | os.PathLike | Mapping[str, Any]') -> Arch:
    """Accept an Arch, a zoo name (``cream_287``), an arch file path, or an arch dict."""
    if isinstance(arch, Arch):
        return arch
    if isinstance(arch, Mapping):
        return Arch.from_dict(arch)
    if isinstance(arch, (str, os.PathLike)):
        from ..models.zoo import ZOO, get_arch
        s = str(arch)
        if s in ZOO:
            return get_arch(s)
        p = Path(s)
        if p.suffix.lower() in ('.json', '.yaml', '.yml') or p.exists():
            return Arch.load(p)
        raise ArchError(f"'{s}' is neither a published net ({', '.join(ZOO)}) nor an arch file")
    raise ArchError(f'cannot make an arch from {type(arch).__name__}')


def iter_stage_layers(arch: Arch) -> Iterable[tuple[int, int, Op]]:
    for s, ops in enumerate(arch.stages):
        for i, op in enumerate(ops):
            yield s, i, op
