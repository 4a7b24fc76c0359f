"""DNA's teacher: a frozen network read out at the points where the search space's stages begin and end.

DNA trains each searchable stage to turn the teacher's feature map *before* that stage into the
teacher's map *after* it, so a stage's target must have the stage's output resolution and two
stages need two distinct maps — the Cream space ends stages 3 and 4 both at stride 16.

Where the maps come from (``taps``, module names whose outputs are hooked):

- **EfficientNet/MobileNetV3-family timm models** (``conv_stem`` + ``blocks``), which is every
  Cream net (a ``tools/retrain.py`` checkpoint, a zoo name or an arch file): each ``blocks.i`` is
  a candidate. For a Cream teacher of the same stage layout, stage ``s`` maps to its own
  ``blocks.{s+1}`` and the first stage's input to ``blocks.0`` (after the fixed first block).
- **Any other timm model**: the levels of its ``feature_info`` (one per stride for most: ResNets,
  ConvNeXts ...).

Stages are matched by output size: for each size, the stages that end there (in order) take the
first candidates of that size (in depth order); the first stage's input takes the last candidate
of its size before that. A teacher with fewer maps at a size than stages ending there — a ResNet
for the Cream space has one stride-16 map for two stages — is refused with one clear error, as is
a teacher whose maps miss a stage's stride entirely. ``modules=[input, stage 1, ..., stage S]``
names the taps explicitly (``input`` may be ``None``).

Without a map at the first stage's input, the student's own stem and first block run on the image
(trained with stage 1's loss — what the authors' code always does for the first block).

The teacher is frozen (no gradients, ``requires_grad=False``), always in eval mode, run under
``torch.no_grad``; the forward stops at the last tap.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
import torch.nn as nn

from ..errors import CheckpointError, ConfigError
from ..space import SearchSpace, as_arch

_KEYS = {'checkpoint', 'arch', 'timm', 'kwargs', 'modules', 'how_to_make'}


class _Stop(Exception):
    """Raised by the last tap's hook: the rest of the teacher's forward is not needed."""


class TeacherFeatures(nn.Module):
    """A frozen model whose ``forward(x)`` returns ``[input map or None, map after stage 1, ...]``.

    Args:
        model: the teacher network (any ``nn.Module`` taking images).
        taps: module names, the first for the first stage's input (or ``None``), then one per stage.
        name: how errors and logs refer to the teacher.
    """

    def __init__(self, model: nn.Module, taps: Sequence[str | None], name: str = 'teacher') -> None:
        super().__init__()
        self.model, self.taps, self.name = model, list(taps), name
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.model.eval()
        self.channels: list[int | None] = []
        self.sizes: list[int | None] = []

    def train(self, mode: bool = True) -> 'TeacherFeatures':
        return super().train(False)       # BN statistics and dropout stay those of the trained teacher

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> list[torch.Tensor | None]:
        return [None if t is None else out for t, out in zip(self.taps, self._run(x, self.taps))]

    def _run(self, x: torch.Tensor, names: Sequence[str | None]) -> list[torch.Tensor | None]:
        wanted = [n for n in names if n is not None]
        found: dict[str, torch.Tensor] = {}
        last = wanted[-1] if wanted else None
        handles = []

        def hook(name: str):
            def fn(_m: nn.Module, _inp: Any, out: Any) -> None:
                found[name] = out.detach()
                if len(found) == len(set(wanted)):
                    raise _Stop
            return fn
        try:
            for n in dict.fromkeys(wanted):
                handles.append(_module(self.model, n, self.name).register_forward_hook(hook(n)))
            if last is not None:
                try:
                    self.model.eval()
                    self.model(x)
                except _Stop:
                    pass
        finally:
            for h in handles:
                h.remove()
        missing = [n for n in wanted if n not in found]
        if missing:
            raise ConfigError(f'{self.name}: module(s) {missing} never ran in the forward; name modules the '
                              'image passes through')
        return [found.get(n) if n is not None else None for n in names]

    @torch.no_grad()
    def probe(self, names: Sequence[str], resolution: int) -> list[tuple[int, int]]:
        """(channels, spatial size) of each named module's output for one image at ``resolution``."""
        ref = next(self.model.parameters(), None)
        x = torch.zeros(1, 3, resolution, resolution, device=ref.device if ref is not None else 'cpu')
        outs = self._run(x, list(names))
        res = []
        for n, o in zip(names, outs):
            if not isinstance(o, torch.Tensor) or o.ndim != 4:
                raise ConfigError(f'{self.name}: module {n} does not output an NCHW feature map')
            if o.shape[-1] != o.shape[-2]:
                raise ConfigError(f'{self.name}: module {n} outputs a non-square map {tuple(o.shape)} for a square '
                                  'image; DNA needs maps at the stages\' strides')
            res.append((int(o.shape[1]), int(o.shape[-1])))
        return res


def _module(model: nn.Module, name: str, who: str) -> nn.Module:
    try:
        return model.get_submodule(name)
    except AttributeError:
        raise ConfigError(f'{who}: has no module {name!r} (teacher.modules names modules of the teacher)') from None


# ---- what the student needs -------------------------------------------------------------------
def stage_sizes(space: SearchSpace, resolution: int) -> tuple[int, list[int]]:
    """Spatial size entering the first searchable stage and after each stage (``ceil`` per stride,
    as every conv pads ``k // 2``)."""
    size = (resolution - 1) // 2 + 1                     # the stem strides 2; the first block does not
    first = size
    out = []
    for st in space.stages:
        size = (size - 1) // st.stride + 1
        out.append(size)
    return first, out


def _candidate_taps(model: nn.Module) -> list[str]:
    if isinstance(getattr(model, 'blocks', None), nn.Sequential) and hasattr(model, 'conv_stem'):
        return [f'blocks.{i}' for i in range(len(model.blocks))]
    info = getattr(model, 'feature_info', None)
    mods = [f.get('module') for f in info] if isinstance(info, (list, tuple)) else \
        [f.get('module') for f in info.get_dicts()] if info is not None and hasattr(info, 'get_dicts') else []
    return [m for m in mods if m]


def match_taps(teacher: TeacherFeatures, space: SearchSpace, resolution: int,
               modules: Sequence[str | None] | None = None) -> list[str | None]:
    """Taps of ``teacher`` for ``space`` at ``resolution`` (see the module docstring); one clear error if none fit."""
    first, sizes = stage_sizes(space, resolution)
    strides = [resolution / s for s in sizes]

    def where(items: Sequence[Any]) -> str:
        return ', '.join(map(str, items))

    if modules is not None:
        modules = list(modules)
        if len(modules) != len(sizes) + 1:
            raise ConfigError(f'teacher.modules: give {len(sizes) + 1} names (the first stage\'s input, or None, '
                              f'then one per stage of search space {space.name}); got {len(modules)}')
        named = [m for m in modules if m is not None]
        got = dict(zip(named, teacher.probe(named, resolution)))
        want = [first] + sizes
        for i, m in enumerate(modules):
            if m is not None and got[m][1] != want[i]:
                what = 'the first stage\'s input' if i == 0 else f'stage {i}'
                raise ConfigError(f'{teacher.name}: teacher.modules[{i}]={m!r} gives a {got[m][1]}x{got[m][1]} map '
                                  f'(stride {resolution / got[m][1]:g}) but {what} of search space {space.name} '
                                  f'needs {want[i]}x{want[i]} (stride {resolution / want[i]:g}) at resolution '
                                  f'{resolution}')
        _record(teacher, modules, got)
        return modules

    cands = _candidate_taps(teacher.model)
    if not cands:
        raise ConfigError(f'{teacher.name}: cannot tell where its feature maps are (no timm blocks or feature_info); '
                          'name them with teacher.modules=[input, stage 1, ...]')
    probed = dict(zip(cands, teacher.probe(cands, resolution)))
    taps: list[str | None] = []
    pos = 0                                   # taps must go deeper stage after stage
    for s, size in enumerate(sizes):
        hit = next((i for i in range(pos, len(cands)) if probed[cands[i]][1] == size), None)
        if hit is None:
            same = [c for c in cands if probed[c][1] == size]
            peers = [i + 1 for i, z in enumerate(sizes) if z == size]
            avail = ', '.join(f'{c} (stride {resolution / probed[c][1]:g})' for c in cands)
            if same and len(peers) > len(same):
                raise ConfigError(
                    f'{teacher.name} has {len(same)} feature map(s) at stride {strides[s]:g} ({where(same)}) but '
                    f'stages {where(peers)} of search space {space.name} all end at stride {strides[s]:g} and each needs its '
                    'own target map. Use a teacher with a distinct map per stage (a Cream net: a tools/retrain.py '
                    'checkpoint, or an EfficientNet/MobileNetV3-family timm model) or name the maps with '
                    f'teacher.modules=[...]. Its maps: {avail}')
            raise ConfigError(f'{teacher.name}: no feature map at stride {strides[s]:g} ({size}x{size} at resolution '
                              f'{resolution}) after {taps[-1] if taps else "the input"} for stage {s + 1} of search '
                              f'space {space.name}; its maps: {avail}. The teacher\'s feature strides must match '
                              'the stages (set teacher.modules=[...] to choose them)')
        taps.append(cands[hit])
        pos = hit + 1
    before = cands[:cands.index(taps[0])]
    inp = next((c for c in reversed(before) if probed[c][1] == first), None)
    taps = [inp] + taps
    _record(teacher, taps, probed)
    return taps


def _record(teacher: TeacherFeatures, taps: Sequence[str | None], probed: Mapping[str, tuple[int, int]]) -> None:
    teacher.taps = list(taps)
    teacher.channels = [None if t is None else probed[t][0] for t in taps]
    teacher.sizes = [None if t is None else probed[t][1] for t in taps]


# ---- building from a config -------------------------------------------------------------------
def build_teacher(cfg: Mapping[str, Any], space: SearchSpace, resolution: int) -> TeacherFeatures:
    """The teacher a DNA config describes, loaded, frozen and matched to the stages of ``space``.

    ``cfg``: ``checkpoint`` (required) plus at most one of

    - ``arch``: a Cream arch (zoo name or arch file); optional when the checkpoint embeds its arch
      (``tools/retrain.py`` checkpoints do);
    - ``timm``: a timm model name (built with ``pretrained=False`` and ``kwargs``, weights from
      the checkpoint).

    ``modules`` names the taps explicitly; ``how_to_make`` is the command that creates a missing
    checkpoint (quoted in the error).
    """
    if not isinstance(cfg, Mapping):
        raise ConfigError('model.strategy.teacher must be a dict such as '
                          "dict(checkpoint='work_dirs/teacher/epoch_10.pth')")
    unknown = set(cfg) - _KEYS
    if unknown:
        raise ConfigError(f'model.strategy.teacher: unknown key(s) {sorted(unknown)}; known: {sorted(_KEYS)}')
    if cfg.get('arch') is not None and cfg.get('timm') is not None:
        raise ConfigError('model.strategy.teacher: give arch= (a Cream net) or timm= (a timm model name), not both')
    path = cfg.get('checkpoint')
    if not path:
        raise ConfigError('model.strategy.teacher.checkpoint is required: the teacher\'s trained weights '
                          '(e.g. a tools/retrain.py checkpoint, which also names its arch)')
    if not Path(path).is_file():
        hint = cfg.get('how_to_make') or ('train one with tools/retrain.py (its checkpoints embed the arch), or give '
                                          'teacher.timm=NAME with a local checkpoint of that timm model')
        raise CheckpointError(f'{path}: DNA teacher checkpoint not found; {hint}')
    from ..models.checkpoint import check_fits, extract_state_dict, load_subnet, read_checkpoint
    if cfg.get('timm') is not None:
        import timm
        try:
            model = timm.create_model(cfg['timm'], pretrained=False, **dict(cfg.get('kwargs') or {}))
        except RuntimeError as e:       # unknown model name
            raise ConfigError(f'model.strategy.teacher.timm={cfg["timm"]!r}: {e}') from None
        name = f'teacher {cfg["timm"]} ({path})'
        sd = extract_state_dict(read_checkpoint(path), source=str(path))
    else:
        from ..models.subnet import build_subnet
        given = cfg.get('arch')
        arch, sd = load_subnet(path, given, given_as='teacher.arch is',
                               missing='give teacher.arch (a zoo name or arch file) or teacher.timm')
        if given is not None:       # the given net (its resolution) with the checkpoint's head
            arch = as_arch(given).with_(num_classes=arch.num_classes)
        model = build_subnet(arch)
        name = f'teacher {arch.name or arch.hash} ({path})'
    check_fits(model, sd, str(path))
    model.load_state_dict(sd, strict=True)
    teacher = TeacherFeatures(model, [], name)
    match_taps(teacher, space, resolution, cfg.get('modules'))
    return teacher


__all__ = ['TeacherFeatures', 'build_teacher', 'match_taps', 'stage_sizes']
