"""The MixPath supernet: every layer may run up to ``max_paths`` of its ops at once, summed.

Same stem, head, stages and candidate blocks as :class:`~cream_det.models.supernet.Supernet`
(built by timm's builder from the same block strings); what differs is the layer: a
:class:`~cream_det.models.mixed_op.MixedOpBlock` holding every op as a branch and a
:class:`~cream_det.models.mixed_op.ShadowBatchNorm` of ``max_paths`` BNs. Key layout::

    blocks.{s+1}.{i}.branches.{op}.conv_pw.weight ...   (op in choice order)
    blocks.{s+1}.{i}.bn.bns.{k-1}.running_mean ...      (k = number of active ops)

A path runs, per layer, a set of op indices; encoded it is :meth:`Arch.encode_mask` (bit j = op j,
0 = absent layer). Export renames keys to ``build_subnet(arch)``'s: a multi-path layer keeps the
active branches (renumbered in choice order) and the shadow BN of its k as ``bn``; a single-op
layer becomes timm's plain block, its branch's weights plus shadow BN 1 as ``bn3``. So the
exported subnet computes exactly the supernet path (tested to the last bit in eval mode).
"""
from __future__ import annotations

from typing import Any, Iterator, Sequence

import torch
import torch.nn as nn

from ..errors import ArchError
from ..space import Arch, SearchSpace
from ..space.codes import check_max_paths
from ..space.spec import CREAM_SPACE
from .mixed_op import MixedOpBlock
from .supernet import PathLike, Supernet, code_vector

#: A decoded MixPath path: per searchable stage, per layer, the ascending op indices it runs.
MixedPath = tuple[tuple[tuple[int, ...], ...], ...]


class MixPathSupernet(Supernet):
    """Supernet whose layers run 1..``max_paths`` ops at once (outputs summed, shadow BN).

    Args:
        max_paths: the most ops a layer runs at once, ``m`` (at most the number of ops).
        Others: as :class:`Supernet`.
    """

    def __init__(self, space: SearchSpace = CREAM_SPACE, depths: Sequence[int] | None = None,
                 num_classes: int = 1000, *, max_paths: int = 2, drop_rate: float = 0.0,
                 resolution: int = 224, init: str = 'independent', head_init: str = 'timm') -> None:
        self.max_paths = check_max_paths(space, max_paths)     # before the layers are built
        super().__init__(space, depths, num_classes, drop_rate=drop_rate, resolution=resolution, init=init,
                         head_init=head_init)

    # ---- the layer hooks of Supernet -------------------------------------------------------------------
    def _make_layer(self, candidates: list[nn.Module]) -> nn.Module:
        return MixedOpBlock(candidates, max_paths=self.max_paths)

    def _parse(self, arch: PathLike) -> MixedPath:
        if isinstance(arch, Arch):
            path = arch.layer_indices()
        else:
            path = _split_mask_code(arch, self.space)
        for s, layers in enumerate(path):
            for i, ops in enumerate(layers):
                if len(ops) > self.max_paths:
                    raise ArchError(f'stage {s + 1} layer {i + 1}: {len(ops)} ops at once, this supernet runs at most '
                                    f'max_paths={self.max_paths}')
        return path

    def _layer_arch(self, layer: tuple[int, ...]) -> Any:
        ops = tuple(self.space.ops[j] for j in layer)
        return ops[0] if len(ops) == 1 else ops

    def _layer_modules(self, s: int, i: int, layer: tuple[int, ...]) -> Iterator[tuple[str, str, nn.Module]]:
        block: MixedOpBlock = self.blocks[s + 1][i]
        here, k = f'blocks.{s + 1}.{i}', len(layer)
        if k == 1:          # the subnet's plain timm block: the branch, with shadow BN 1 as its bn3
            yield f'{here}.branches.{layer[0]}', here, block.branches[layer[0]]
            yield f'{here}.bn.bns.0', f'{here}.bn3', block.bn.bns[0]
            return
        for b, j in enumerate(layer):
            yield f'{here}.branches.{j}', f'{here}.branches.{b}', block.branches[j]
        yield f'{here}.bn.bns.{k - 1}', f'{here}.bn', block.bn.bns[k - 1]

    def _run_layer(self, module: nn.Module, layer: tuple[int, ...], x: torch.Tensor) -> torch.Tensor:
        return module(x, layer)

    def extra_repr(self) -> str:
        return super().extra_repr() + f', max_paths={self.max_paths}'


def _split_mask_code(code: Any, space: SearchSpace) -> MixedPath:
    """Per-stage op-index sets of an ``Arch.encode_mask()`` vector, rejecting gaps and unknown ops."""
    code = code_vector(code, space, 'an encoded MixPath path', 'Arch.encode_mask()')
    n_ops, off, path = len(space.ops), 0, []
    for s, st in enumerate(space.stages):
        seg = [int(c) for c in code[off:off + st.max_depth]]
        masks = [c for c in seg if c != 0]
        if seg[:len(masks)] != masks:
            raise ArchError(f'stage {s + 1}: encoded layers {seg} must be op-set masks followed only by 0')
        if any(not 0 < c < 1 << n_ops for c in masks):
            raise ArchError(f'stage {s + 1}: a mask outside 1..{(1 << n_ops) - 1} (bits for the {n_ops} ops of '
                            f'search space {space.name}) in {seg}')
        if len(masks) < st.min_depth:
            raise ArchError(f'stage {s + 1}: {len(masks)} layers, the space needs at least {st.min_depth}')
        path.append(tuple(tuple(j for j in range(n_ops) if c >> j & 1) for c in masks))
        off += st.max_depth
    return tuple(path)


__all__ = ['MixPathSupernet', 'MixedPath']
