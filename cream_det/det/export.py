"""ONNX export of a Cream detector's tensor graph (what mmdet calls ``mode='tensor'``).

The exported graph takes the *preprocessed* image batch (normalised, padded to the size divisor:
what mmdet's ``DetDataPreprocessor`` hands the model) and returns the raw head outputs, level by
level; box decoding and NMS stay outside, as in mmdet's own ``mode='tensor'``. Deployment stacks
(onnxruntime, TensorRT) supply those post-processing steps, and keeping them out keeps the graph
free of data-dependent shapes, so every output can be checked against PyTorch number for number.

Two-stage detectors export backbone, neck and RPN head: the RoI stage needs the proposals that
NMS selects, which is post-processing. ``backbone_only`` exports the ``CreamBackbone`` features.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
import torch.nn as nn

from ..errors import CheckpointError, ConfigError
from ..models.checkpoint import STEM_KEY, check_fits, extract_state_dict, load_subnet, read_checkpoint

#: default export size (H, W): mmdet's 1333x800 test scale, padded to the size divisor 32
DEFAULT_SHAPE = (800, 1344)


def build_detector(cfg: Any, checkpoint_arch: Any = None) -> nn.Module:
    """The config's detector, its ``CreamBackbone`` refused early when it is something else.

    The backbone's ``Pretrained`` init is dropped: the exported weights come from the checkpoint,
    and a missing ImageNet file must not stop an export of a trained detector. A config that names
    no arch (it reads it from that ImageNet file) takes ``checkpoint_arch``, the arch the exported
    checkpoint embeds, when there is one.
    """
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    model_cfg = cfg.get('model')
    backbone = (model_cfg or {}).get('backbone') or {}
    if backbone.get('type') != 'CreamBackbone':
        raise ConfigError(f"the config's model.backbone is {backbone.get('type')!r}, not a CreamBackbone: "
                          'export_onnx exports Cream detectors (use mmdeploy for other backbones)')
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    if backbone.get('arch') is None and checkpoint_arch is not None:
        backbone['arch'] = checkpoint_arch.to_dict()
    if backbone.get('arch') is not None:        # else CreamBackbone reads it from its Pretrained file
        backbone['init_cfg'] = None
    model = MODELS.build(model_cfg)
    model.eval()
    return model


def load_checkpoint(model: nn.Module, path: 'str | os.PathLike', backbone_only: bool = False) -> str:
    """Load ``path`` strictly into ``model``; returns which kind of checkpoint it was.

    A detector checkpoint (mmdet Runner's, keys ``backbone.net.*``, ``neck.*`` …) fills the whole
    detector. With ``backbone_only`` a classification checkpoint (retrain, converted official)
    also works. A checkpoint of another arch — by its embedded arch or by its shapes — is refused.
    """
    src = str(path)
    ckpt = read_checkpoint(path)
    arch = model.backbone.arch
    _, bare = load_subnet(src, arch, ckpt=ckpt, drop_head=True, missing=None, given_as='the config builds',
                          fix='export with the config the checkpoint was trained with')
    sd = extract_state_dict(ckpt, source=src)
    if any(k.startswith('backbone.') for k in sd):
        if backbone_only:
            sub = {k[len('backbone.'):]: v for k, v in sd.items() if k.startswith('backbone.')}
            _load(model.backbone, sub, src, arch)
        else:
            _load(model, sd, src, arch)
        return 'detector'
    if not any(k.endswith(STEM_KEY) for k in sd):
        raise CheckpointError(f'{src}: neither a detector checkpoint (backbone.* keys) nor a Cream '
                              'classification checkpoint (conv_stem.* keys)')
    if not backbone_only:
        raise CheckpointError(f'{src}: a classification checkpoint holds no neck or head; export it with '
                              '--backbone-only, or pass a detector checkpoint (tools/train.py writes those)')
    _load(model.backbone.net, bare, src, arch)
    return 'classification'


def _load(module: nn.Module, sd: Mapping[str, torch.Tensor], src: str, arch: Any) -> None:
    try:
        check_fits(module, sd, src)
    except CheckpointError as e:
        raise CheckpointError(f'{e} (the config builds {arch})') from None
    module.load_state_dict(sd, strict=True)


class TensorGraph(nn.Module):
    """The detector (or its backbone) as a function image tensor -> flat tuple of tensors."""

    def __init__(self, detector: nn.Module, backbone_only: bool = False) -> None:
        super().__init__()
        self.detector = detector
        self.backbone_only = backbone_only
        self.two_stage = hasattr(detector, 'rpn_head') and hasattr(detector, 'roi_head')

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if self.backbone_only:
            return tuple(self.detector.backbone(x))
        if self.two_stage:
            outs = self.detector.rpn_head(self.detector.extract_feat(x))
        else:
            outs = self.detector._forward(x)
        return tuple(_flatten(outs))

    def output_names(self, example: torch.Tensor) -> list[str]:
        """``feat_<level>`` for a backbone; ``<head output>_<level>`` (e.g. cls_score_0) for a head."""
        with torch.no_grad():
            if self.backbone_only:
                return [f'feat_{i}' for i in self.detector.backbone.out_indices]
            outs = (self.detector.rpn_head(self.detector.extract_feat(example)) if self.two_stage
                    else self.detector._forward(example))
        kinds = _head_output_kinds(self.detector, len(outs))
        names = []
        for kind, group in zip(kinds, outs):
            group = group if isinstance(group, (list, tuple)) else [group]
            names += [f'{kind}_{lvl}' for lvl in range(len(group))]
        return names


def _head_output_kinds(detector: nn.Module, n: int) -> list[str]:
    head = type(getattr(detector, 'rpn_head', None) or getattr(detector, 'bbox_head', None)).__name__
    known = {'FCOSHead': ['cls_score', 'bbox_pred', 'centerness']}
    kinds = known.get(head, ['cls_score', 'bbox_pred'])
    return kinds if len(kinds) == n else [f'out{i}' for i in range(n)]


def _flatten(outs: Any) -> list[torch.Tensor]:
    if isinstance(outs, torch.Tensor):
        return [outs]
    flat: list[torch.Tensor] = []
    for o in outs:
        flat += _flatten(o)
    return flat


def export_onnx(graph: TensorGraph, out: 'str | os.PathLike', shape: Sequence[int] = DEFAULT_SHAPE,
                opset: int = 17) -> dict[str, Any]:
    """Write ``graph`` as ONNX (static ``1x3xHxW`` input named ``input``), atomically."""
    h, w = (int(s) for s in shape)
    if h <= 0 or w <= 0 or h % 32 or w % 32:
        raise ConfigError(f'--shape {h} {w}: height and width must be positive multiples of 32 '
                          '(the detectors pad to 32; 1333x800 images give 800 1344)')
    graph.eval()
    example = torch.zeros(1, 3, h, w)
    names = graph.output_names(example)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f'.{out.name}.tmp{os.getpid()}')
    try:
        with torch.no_grad():
            torch.onnx.export(graph, (example,), str(tmp), input_names=['input'], output_names=names,
                              opset_version=opset, dynamo=False, do_constant_folding=True)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    return {'path': str(out), 'input_shape': (1, 3, h, w), 'outputs': names}


def compare_onnxruntime(graph: TensorGraph, onnx_path: 'str | os.PathLike', x: torch.Tensor) -> float:
    """Largest absolute difference between onnxruntime's outputs and PyTorch's on ``x``."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise ConfigError('onnxruntime is not installed: pip install -e .[deploy]') from None
    sess = ort.InferenceSession(str(onnx_path), providers=['CPUExecutionProvider'])
    got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        want = graph.eval()(x)
    if len(got) != len(want):
        raise ValueError(f'onnxruntime gave {len(got)} outputs, PyTorch {len(want)}')
    return max(float((torch.from_numpy(g) - w).abs().max()) for g, w in zip(got, want))


__all__ = ['DEFAULT_SHAPE', 'build_detector', 'load_checkpoint', 'TensorGraph', 'export_onnx', 'compare_onnxruntime']
