"""Search spaces as data.

A space says what is fixed (stem, the first depthwise-separable block, the last 1x1 conv, the
head) and what is searched (per stage: depth within [min_depth, max_depth] and one op per layer
from ``ops``). Everything downstream (arch validation, FLOPs tables, subnet and supernet builders)
reads only this spec, so another space (other widths, op sets or depths) is another instance, not
a code change.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Mapping

from ..errors import SpaceError


@dataclass(frozen=True, order=True)
class Op:
    """One candidate inverted-residual op: depthwise kernel size and expansion ratio."""

    kernel: int
    expansion: int

    @property
    def name(self) -> str:
        return f'k{self.kernel}e{self.expansion}'

    @classmethod
    def parse(cls, text: str) -> 'Op':
        """``'k5e6'`` -> ``Op(5, 6)``."""
        t = text.strip().lower()
        if t.startswith('k') and 'e' in t:
            k, e = t[1:].split('e', 1)
            if k.isdigit() and e.isdigit():
                return cls(int(k), int(e))
        raise ValueError(f"op '{text}' is not of the form 'k<kernel>e<expansion>', e.g. 'k5e6'")


@dataclass(frozen=True)
class FixedBlock:
    """A fixed block given as a timm block string (the space's ``first_block``), as far as its cost needs.

    ``kind`` is ``ds`` (depthwise-separable: kxk depthwise, SE on the input width, 1x1 project;
    ``dsa`` costs the same) or ``ir`` (inverted residual with expansion ``expansion``);
    ``se_ratio`` 0 means no SE. Built by :meth:`parse` from e.g. ``'ds_r1_k3_s1_e1_c16_se0.25'``.
    """

    kind: str
    repeats: int
    kernel: int
    stride: int
    expansion: int
    out_channels: int
    se_ratio: float

    #: block types whose cost is modelled, and the options a string may carry
    KINDS = ('ds', 'dsa', 'ir')
    _OPTIONS = ('r', 'k', 's', 'e', 'c', 'se')

    @classmethod
    def parse(cls, text: str) -> 'FixedBlock':
        """Parse a timm block string; a type or option the cost model does not know raises ValueError."""
        kind, *parts = text.split('_')
        opts: dict[str, str] = {}
        for part in parts:
            if part == 'noskip':            # the residual add costs nothing
                continue
            key = next((k for k in sorted(cls._OPTIONS, key=len, reverse=True) if part.startswith(k)), None)
            if key is None or key in opts:
                raise ValueError(f"block '{text}': option '{part}' is not one of {', '.join(cls._OPTIONS)}, noskip")
            opts[key] = part[len(key):]
        if kind not in cls.KINDS or not {'r', 'k', 's', 'c'} <= set(opts):
            raise ValueError(f"block '{text}' is not of the form '<{'|'.join(cls.KINDS)}>_r<n>_k<k>_s<s>_e<e>_c<c>"
                             "[_se<ratio>]', e.g. 'ds_r1_k3_s1_e1_c16_se0.25'")
        try:
            b = cls(kind, int(opts['r']), int(opts['k']), int(opts['s']), int(opts.get('e', '1')), int(opts['c']),
                    float(opts.get('se', '0')))
        except ValueError:
            raise ValueError(f"block '{text}': r, k, s, e and c must be integers and se a number") from None
        if b.repeats < 1 or b.kernel < 1 or b.kernel % 2 == 0 or b.stride not in (1, 2) or b.out_channels < 1:
            raise ValueError(f"block '{text}': needs r >= 1, an odd k, s 1 or 2 and c >= 1")
        return b


@dataclass(frozen=True)
class StageSpec:
    """A searchable stage. ``template`` is the op the authors' generator keeps for one-block stages."""

    out_channels: int
    stride: int
    template: Op
    max_depth: int
    min_depth: int = 1


@dataclass(frozen=True)
class SearchSpace:
    """A MobileNetV3/EfficientNet-style space (defaults: the Cream paper's)."""

    name: str
    stages: tuple[StageSpec, ...]
    ops: tuple[Op, ...]
    stem_channels: int = 16
    first_block: str = 'ds_r1_k3_s1_e1_c16_se0.25'
    last_channels: int = 320
    head_channels: int = 1280
    se_ratio: float = 0.25
    resolution_multiple: int = 32
    description: str = ''
    _op_index: dict = field(default=None, compare=False, repr=False, hash=False)

    def __post_init__(self) -> None:
        if not self.stages:
            raise SpaceError(f"search space '{self.name}' has no stages")
        if len(set(self.ops)) != len(self.ops) or not self.ops:
            raise SpaceError(f"search space '{self.name}': ops must be a non-empty list without repeats")
        for i, st in enumerate(self.stages):
            if not 1 <= st.min_depth <= st.max_depth:
                raise SpaceError(f"search space '{self.name}', stage {i + 1}: need 1 <= min_depth <= max_depth")
            if st.stride not in (1, 2):
                raise SpaceError(f"search space '{self.name}', stage {i + 1}: stride must be 1 or 2")
        try:
            FixedBlock.parse(self.first_block)
        except ValueError as e:
            raise SpaceError(f"search space '{self.name}', first_block: {e}") from None
        object.__setattr__(self, '_op_index', {op: i for i, op in enumerate(self.ops)})

    @property
    def num_stages(self) -> int:
        return len(self.stages)

    @property
    def max_layers(self) -> int:
        """Number of layer slots when every stage is at its maximum depth."""
        return sum(s.max_depth for s in self.stages)

    def op_index(self, op: Op) -> int:
        try:
            return self._op_index[op]
        except KeyError:
            names = ', '.join(o.name for o in self.ops)
            raise SpaceError(f"op {op.name} is not in search space '{self.name}' (ops: {names})") from None

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith('_')}
        d['ops'] = [op.name for op in self.ops]
        d['stages'] = [dict(asdict(s), template=s.template.name) for s in self.stages]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> 'SearchSpace':
        try:
            d = dict(d)
            d['ops'] = tuple(Op.parse(o) for o in d['ops'])
            d['stages'] = tuple(StageSpec(**dict(s, template=Op.parse(s['template']))) for s in d['stages'])
            return cls(**d)
        except SpaceError:
            raise
        except (KeyError, TypeError, ValueError) as e:
            raise SpaceError(f'malformed search-space spec: {e}') from None


#: the most ops a multi-path layer's bitmask code may address (codes are int32)
MAX_MASK_OPS = 16

#: The six ops of the paper, in the official choice-index order (0..5).
CREAM_OPS = (Op(3, 4), Op(3, 6), Op(5, 4), Op(5, 6), Op(7, 4), Op(7, 6))

#: The Cream paper's space. max_depth 6 covers every published net (cream_604 has 6 layers in
#: stages 4 and 5); searches fix a smaller depth through their supernet (see models.supernet).
CREAM_SPACE = SearchSpace(
    name='cream_mbv3',
    stages=(
        StageSpec(24, 2, Op(3, 4), 6),
        StageSpec(40, 2, Op(5, 4), 6),
        StageSpec(80, 2, Op(3, 6), 6),
        StageSpec(96, 1, Op(3, 6), 6),
        StageSpec(192, 2, Op(5, 6), 6),
    ),
    ops=CREAM_OPS,
    description='Cream (NeurIPS 2020) MobileNetV3-like space: 5 stages x {k3,k5,k7} x {e4,e6}, SE 0.25, Swish',
)

_SPACES: dict[str, SearchSpace] = {}


def register_space(space: SearchSpace) -> SearchSpace:
    """Make a space resolvable by name (arch files refer to their space by name)."""
    old = _SPACES.get(space.name)
    if old is not None and old != space:
        raise SpaceError(f"a different search space named '{space.name}' is already registered")
    _SPACES[space.name] = space
    return space


def get_space(name_or_spec: 'str | SearchSpace | Mapping[str, Any]') -> SearchSpace:
    """Resolve a space from its registered name, a spec dict, or pass a space through."""
    if isinstance(name_or_spec, SearchSpace):
        return name_or_spec
    if isinstance(name_or_spec, Mapping):
        return SearchSpace.from_dict(name_or_spec)
    try:
        return _SPACES[name_or_spec]
    except KeyError:
        raise SpaceError(
            f"unknown search space '{name_or_spec}'; registered: {', '.join(sorted(_SPACES))}") from None


def is_registered(space: SearchSpace) -> bool:
    return _SPACES.get(space.name) == space


register_space(CREAM_SPACE)
