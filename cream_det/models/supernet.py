"""The weight-sharing supernet: every op of every layer, one path run per forward.

Layout mirrors the subnet so a path's weights can be exported by renaming keys alone:

- fixed parts keep the subnet's names: ``conv_stem``, ``bn1`` and the head (``conv_head``, ``act2``,
  ``classifier`` ...) are taken from a timm MobileNetV3, so they are the subnet's own modules by
  construction; ``blocks.0`` (the depthwise-separable block) and ``blocks.{n+1}`` (the 1x1 conv to
  ``last_channels``) are one-block stages like the subnet's;
- searchable stage ``s`` (0-based) lives at ``blocks.{s+1}``; layer ``i`` of it is a
  ``ModuleList`` with one candidate per op of ``space.ops`` (choice-index order), so the key
  ``blocks.{s+1}.{i}.{op}.conv_pw.weight`` becomes the subnet's ``blocks.{s+1}.{i}.conv_pw.weight``.

Every block is built by timm's ``EfficientNetBuilder`` from a block string, with the arguments
:func:`~cream_det.models.subnet.model_kwargs` gives the subnet (the SE gate's hard sigmoid in a
twice-differentiable spelling of the same formula); nothing is written by hand. A path
shallower than the supernet skips the surplus layers of a stage: those are stride-1 residual
layers, so the skip is the identity and the path is exactly the shallower subnet.
"""
from __future__ import annotations

from functools import partial
from typing import Any, Iterator, Sequence, Union

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from timm.layers.activations import HardSigmoid
from timm.models._efficientnet_builder import decode_arch_def, efficientnet_init_weights
from timm.models.mobilenetv3 import MobileNetV3

from ..errors import ArchError, SpaceError
from ..space import Arch, SearchSpace
from ..space.codes import PathCodes
from ..space.spec import CREAM_SPACE
from .subnet import build_block as _build_block
from .subnet import HEAD_INITS, build_subnet, init_head_, model_kwargs

#: What ``forward`` accepts as a path: an Arch or its ``Arch.encode()`` vector (-1 = absent layer).
PathLike = Union[Arch, np.ndarray, Sequence[int], torch.Tensor]
#: A decoded path: per searchable stage, the op index of each layer that runs.
OpPath = tuple[tuple[int, ...], ...]

class Supernet(nn.Module):
    """One-shot supernet over ``space`` with fixed per-stage ``depths``: one op per layer and step.

    Multi-path (MixPath) archs are refused with one clear error; they run in
    :class:`~cream_det.models.mixpath_supernet.MixPathSupernet`, which extends this class through the
    ``_make_layer`` / ``_parse`` / ``_layer_modules`` / ``_run_layer`` hooks.

    Args:
        space: the search space (its ``ops`` are the candidates of every layer).
        depths: layers per searchable stage (e.g. from :func:`cream_det.space.sizing.supernet_depths`); ``None`` = each
            stage's ``max_depth``.
        num_classes: classifier width.
        drop_rate: dropout before the classifier, as in the subnet.
        resolution: the search resolution; only recorded so encoded paths decode to full Archs.
        init: ``'independent'`` (every candidate initialised on its own, as the authors do) or
            ``'aligned'`` (:func:`align_candidates_`: candidates of a layer start as slices of
            the layer's largest one; for short searches, see there).
        head_init: ``'timm'`` (the classifier uniform in +-1/sqrt(num_classes), as the authors') or
            ``'zero'``. The authors' range is sized for ImageNet's 1,000 classes; at 10 it is ten times
            wider, the first logits are large and wrong, and a single-path supernet on the 10-class proxy
            task trained at 18 % after 1,500 steps with it against 46 % from zero (docs/proxy_task.md).
    """

    #: ``None``: single-path codes (:meth:`Arch.encode`); MixPath supernets: the most ops per layer
    max_paths: int | None = None

    @property
    def codes(self) -> PathCodes:
        """The kind of this supernet's encoded paths: what a sampler draws for it and a search breeds."""
        return PathCodes(self.space, self.max_paths)

    def __init__(self, space: SearchSpace = CREAM_SPACE, depths: Sequence[int] | None = None,
                 num_classes: int = 1000, *, drop_rate: float = 0.0, resolution: int = 224,
                 init: str = 'independent', head_init: str = 'timm') -> None:
        super().__init__()
        if head_init not in HEAD_INITS:
            raise ArchError(f"supernet head_init={head_init!r}: one of {', '.join(HEAD_INITS)}")
        self.space, self.num_classes, self.drop_rate, self.resolution = space, num_classes, drop_rate, resolution
        self.depths = _check_depths(space, depths)
        per_op = [Arch(tuple((op,) * d for d in self.depths), resolution, num_classes, space) for op in space.ops]
        kwargs = model_kwargs(per_op[0])
        kwargs['se_layer'] = _twice_differentiable_gate(kwargs['se_layer'])
        self._take_stem_and_head(kwargs, space, num_classes, resolution)
        strings = [a.block_strings() for a in per_op]      # [op][position in the built net][layer]
        first, chs = _build_block(kwargs, strings[0][0][0], self.conv_stem.out_channels)
        stages = []
        for s in range(space.num_stages):
            stage, chs = _build_stage(kwargs, [st[s + 1] for st in strings], chs, self._make_layer)
            stages.append(stage)
        last, _ = _build_block(kwargs, strings[0][-1][0], chs)
        self.blocks = nn.ModuleList([nn.Sequential(first)] + stages + [nn.Sequential(last)])
        self._feature_after = _feature_positions(space)
        efficientnet_init_weights(self)
        if init == 'aligned':
            align_candidates_(self)
        elif init != 'independent':
            raise ArchError(f"supernet init={init!r}: 'independent' or 'aligned'")
        init_head_(self.classifier, head_init)
        self.init, self.head_init = init, head_init

    def _take_stem_and_head(self, kwargs: dict[str, Any], space: SearchSpace, num_classes: int,
                            resolution: int) -> None:
        """Borrow stem and head from a timm MobileNetV3, so they are the subnet's own by construction."""
        smallest = Arch(tuple((st.template,) * st.min_depth for st in space.stages), resolution, num_classes, space)
        template = MobileNetV3(**{**kwargs, 'block_args': decode_arch_def(smallest.block_strings())})
        for name in ('conv_stem', 'bn1', 'global_pool', 'conv_head', 'norm_head', 'act2', 'flatten', 'classifier'):
            setattr(self, name, getattr(template, name))

    # ---- hooks a supernet with other layers overrides -----------------------------------------------
    def _make_layer(self, candidates: list[nn.Module]) -> nn.Module:
        """The module of one layer from its candidate blocks (one per op, choice order)."""
        return nn.ModuleList(candidates)

    def _parse(self, arch: PathLike) -> tuple:
        """Per-stage layer choices of an Arch or a code (not yet checked against the depths)."""
        if isinstance(arch, Arch):
            arch.require_single_path(f'the single-path supernet of {self.space.name} (strategies cream, spos)',
                                     "a MixPath supernet runs it: strategy=dict(type='mixpath', max_paths=m)")
            return tuple(tuple(ops) for ops in arch.choice_indices())
        return _split_code(arch, self.space)

    def _layer_arch(self, layer: Any) -> Any:
        """A layer choice as it appears in :class:`Arch` stages."""
        return self.space.ops[layer]

    def _layer_modules(self, s: int, i: int, layer: Any) -> Iterator[tuple[str, str, nn.Module]]:
        """(supernet prefix, subnet prefix, module) of what layer ``i`` of stage ``s`` runs."""
        yield f'blocks.{s + 1}.{i}.{layer}', f'blocks.{s + 1}.{i}', self.blocks[s + 1][i][layer]

    def _run_layer(self, module: nn.Module, layer: Any, x: torch.Tensor) -> torch.Tensor:
        return module[layer](x)

    # ---- paths -------------------------------------------------------------------------------------
    def parse_path(self, arch: PathLike) -> OpPath:
        """Per-stage op indices of a path, checked against this supernet's space and depths."""
        if isinstance(arch, Arch) and arch.space != self.space:
            raise ArchError(f"arch is of search space '{arch.space.name}', the supernet of '{self.space.name}'")
        path = self._parse(arch)
        for s, (ops, d) in enumerate(zip(path, self.depths)):
            if len(ops) > d:
                raise ArchError(f'stage {s + 1}: path has {len(ops)} layers, the supernet only {d} '
                                f'(depths {self.depths}); build a deeper supernet or sample with its depths')
        return path

    def arch_of(self, arch: PathLike) -> Arch:
        """The :class:`Arch` of a path (encoded paths decode at the supernet's resolution and classes)."""
        if isinstance(arch, Arch):
            self.parse_path(arch)
            return arch
        path = self.parse_path(arch)
        return Arch(tuple(tuple(self._layer_arch(j) for j in ops) for ops in path), self.resolution,
                    self.num_classes, self.space)

    def _named_path_modules(self, path: OpPath) -> Iterator[tuple[str, str, nn.Module]]:
        """(supernet prefix, subnet prefix, module) of everything the path runs, in order."""
        for name in ('conv_stem', 'bn1'):
            yield name, name, getattr(self, name)
        yield 'blocks.0', 'blocks.0', self.blocks[0]
        for s, ops in enumerate(path):
            for i, j in enumerate(ops):
                yield from self._layer_modules(s, i, j)
        last = f'blocks.{len(path) + 1}'
        yield last, last, self.blocks[-1]
        for name in ('conv_head', 'norm_head', 'classifier'):
            yield name, name, getattr(self, name)

    def named_path_parameters(self, arch: PathLike) -> Iterator[tuple[str, nn.Parameter]]:
        """Parameters a path uses, under their supernet names (what a single-path step updates)."""
        for prefix, _, m in self._named_path_modules(self.parse_path(arch)):
            yield from m.named_parameters(prefix=prefix)

    def named_path_buffers(self, arch: PathLike) -> Iterator[tuple[str, torch.Tensor]]:
        for prefix, _, m in self._named_path_modules(self.parse_path(arch)):
            yield from m.named_buffers(prefix=prefix)

    # ---- forward -----------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, arch: PathLike) -> torch.Tensor:
        """Logits of exactly one path."""
        x = self._trunk(x, self.parse_path(arch), None)
        x = self.act2(self.norm_head(self.conv_head(self.global_pool(x))))
        x = self.flatten(x)
        if self.drop_rate > 0.0:
            x = F.dropout(x, p=self.drop_rate, training=self.training)
        return self.classifier(x)

    def features(self, x: torch.Tensor, arch: PathLike) -> list[torch.Tensor]:
        """Multi-scale features of a path (strides 4, 8, 16, 32 in the Cream space) for block-wise use."""
        feats: list[torch.Tensor] = []
        self._trunk(x, self.parse_path(arch), feats)
        return feats

    def _trunk(self, x: torch.Tensor, path: OpPath, feats: list[torch.Tensor] | None) -> torch.Tensor:
        x = self.blocks[0](self.bn1(self.conv_stem(x)))
        for s, ops in enumerate(path):
            for i, j in enumerate(ops):
                x = self._run_layer(self.blocks[s + 1][i], j, x)
            if feats is not None and s + 1 in self._feature_after:
                feats.append(x)
        x = self.blocks[-1](x)
        if feats is not None:
            feats.append(x)
        return x

    # ---- export ------------------------------------------------------------------------------------
    def subnet_state_dict(self, arch: PathLike) -> dict[str, torch.Tensor]:
        """The path's weights under the key names of ``build_subnet(arch)`` (tensors shared, not copied)."""
        out: dict[str, torch.Tensor] = {}
        for _, sub_prefix, m in self._named_path_modules(self.parse_path(arch)):
            out.update(m.state_dict(prefix=sub_prefix + '.', keep_vars=False))
        return out

    def export_subnet(self, arch: PathLike) -> nn.Module:
        """A stand-alone timm subnet carrying the path's inherited weights (and the supernet's mode)."""
        a = self.arch_of(arch)
        model = build_subnet(a, num_classes=self.num_classes, drop_rate=self.drop_rate)
        ref = next(self.parameters())
        model.to(device=ref.device, dtype=ref.dtype)
        model.load_state_dict(self.subnet_state_dict(a), strict=True)
        return model.train(self.training)

    def extra_repr(self) -> str:
        return f'space={self.space.name}, depths={self.depths}, ops={[o.name for o in self.space.ops]}'


def align_candidates_(supernet: Supernet) -> Supernet:
    """Start every candidate of a layer as a slice of the layer's largest candidate (in place).

    With independently initialised candidates, each layer of a randomly sampled path sees one of
    ``len(ops)`` unrelated feature maps from the layer before, and a short single-path training
    barely learns: on the 64 px digits demo (one layer per stage, six ops, 220 SGD steps at lr
    0.02, batch 32) batch top-1 over the last 20 steps is 10 % (chance), against 82 % for the same
    supernet whose candidates start as slices of one kernel. Slicing copies leading channels and
    the centre of larger kernels (a 3x3 kernel is the centre of the 7x7 one); the weights stay
    separate parameters afterwards, so training, paths and export are unchanged: only the starting
    point differs. The authors initialise candidates independently (the default).
    """
    for stage in supernet.blocks[1:-1]:
        for layer in stage:
            cands = getattr(layer, 'branches', layer)      # a MixPath layer keeps its candidates as branches
            params = [dict(c.named_parameters()) for c in cands]
            big = max(range(len(cands)), key=lambda j: sum(p.numel() for p in params[j].values()))
            for j, cand in enumerate(params):
                if j == big:
                    continue
                for name, p in cand.items():
                    src = params[big].get(name)
                    if src is None or src.dim() != p.dim() or any(a > b for a, b in zip(p.shape, src.shape)):
                        raise ArchError(f"init='aligned' needs a largest candidate per layer; {name} of op {j} "
                                        f'({tuple(p.shape)}) does not fit in op {big} ({tuple(src.shape) if src is not None else None})')
                    with torch.no_grad():
                        p.copy_(src[_leading_and_centre(p.shape, src.shape)])
    return supernet


def _leading_and_centre(small: Sequence[int], big: Sequence[int]) -> tuple[slice, ...]:
    """Index of ``small`` inside ``big``: leading channels (dims 0, 1), centred kernel (dims 2+)."""
    out = []
    for d, (a, b) in enumerate(zip(small, big)):
        start = (b - a) // 2 if d >= 2 else 0
        out.append(slice(start, start + a))
    return tuple(out)


def _check_depths(space: SearchSpace, depths: Sequence[int] | None) -> tuple[int, ...]:
    if depths is None:
        return tuple(st.max_depth for st in space.stages)
    depths = tuple(int(d) for d in depths)
    if len(depths) != space.num_stages or any(not st.min_depth <= d <= st.max_depth
                                              for d, st in zip(depths, space.stages)):
        limits = ', '.join(f'[{st.min_depth}, {st.max_depth}]' for st in space.stages)
        raise SpaceError(f'supernet depths {depths} do not fit search space {space.name}: '
                         f'one depth per stage within {limits}')
    return depths


def _twice_differentiable_gate(se_layer: Any) -> Any:
    """The SE layer with the same hard-sigmoid gate written as ``relu6(x + 3) / 6`` (timm's HardSigmoid).

    PyTorch's native ``hardsigmoid`` has no double backward, and Cream's meta update
    differentiates through a simulated SGD step. timm's formula is the same function (bit-equal
    outputs; the export test checks it), so exported subnets keep the native gate.
    """
    if isinstance(se_layer, partial) and se_layer.keywords.get('gate_layer') in ('hard_sigmoid', nn.Hardsigmoid):
        return partial(se_layer, gate_layer=HardSigmoid)
    return se_layer


def _build_stage(kwargs: dict[str, Any], strings_per_op: list[list[str]], in_chs: int,
                 make_layer: Any = nn.ModuleList) -> tuple[nn.ModuleList, int]:
    """Layers of one stage, layer i made from one candidate per op (``strings_per_op[op][i]``); returns out width."""
    layers = []
    for i in range(len(strings_per_op[0])):
        cands = [_build_block(kwargs, strings[i], in_chs) for strings in strings_per_op]
        layers.append(make_layer([block for block, _ in cands]))
        in_chs = cands[0][1]
    return nn.ModuleList(layers), in_chs


def _feature_positions(space: SearchSpace) -> frozenset[int]:
    """1-based stage positions whose output ends a feature level (the next stage strides)."""
    st = space.stages
    return frozenset(s + 1 for s in range(len(st) - 1) if st[s + 1].stride > 1)


def code_vector(code: Any, space: SearchSpace, what: str, encoder: str) -> np.ndarray:
    """``code`` as a 1-D integer vector of one slot per layer of ``space``, or one clear error."""
    if isinstance(code, torch.Tensor):
        code = code.detach().cpu().numpy()
    code = np.asarray(code)
    if code.ndim != 1 or code.shape[0] != space.max_layers or not np.issubdtype(code.dtype, np.integer):
        raise ArchError(f'{what} must be a vector of {space.max_layers} ints ({encoder} of search '
                        f"space '{space.name}'), got shape {code.shape} of {code.dtype}")
    return code


def _split_code(code: Any, space: SearchSpace) -> OpPath:
    """Per-stage op indices of an ``Arch.encode()`` vector, rejecting gaps and unknown ops."""
    code = code_vector(code, space, 'an encoded path', 'Arch.encode()')
    n_ops, off, path = len(space.ops), 0, []
    for s, st in enumerate(space.stages):
        seg = [int(c) for c in code[off:off + st.max_depth]]
        ops = tuple(c for c in seg if c >= 0)
        if seg[:len(ops)] != list(ops) or any(c < -1 for c in seg):
            raise ArchError(f'stage {s + 1}: encoded layers {seg} must be op indices followed only by -1')
        if any(c >= n_ops for c in ops):
            raise ArchError(f'stage {s + 1}: op index outside 0..{n_ops - 1} of search space {space.name} in {seg}')
        if len(ops) < st.min_depth:
            raise ArchError(f'stage {s + 1}: {len(ops)} layers, the space needs at least {st.min_depth}')
        path.append(ops)
        off += st.max_depth
    return tuple(path)


__all__ = ['Supernet']
