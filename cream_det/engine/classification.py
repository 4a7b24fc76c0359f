"""The retraining model and its metric: a timm subnet as an mmengine ``BaseModel``.

Why a thin wrapper: mmengine's Runner wants ``forward(inputs, label, mode)`` and a metric object;
the network, loss, Mixup and label smoothing are timm's. The subnet is held as ``self.net`` so a
checkpoint's keys are ``net.<timm key>`` — the detection backbone strips that prefix, and
:meth:`CreamClassifier._accept_plain_keys` takes converted official checkpoints (plain timm keys)
in ``load_from`` too.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
import torch.nn as nn
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from mmengine.registry import METRICS, MODELS
from timm.data import Mixup
from timm.data.mixup import mixup_target
from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy

from ..errors import ConfigError
from ..models.subnet import build_subnet
from ..space import Arch, as_arch

NET = 'net.'


def classifier_arch(arch: 'Arch | str | Mapping[str, Any]', num_classes: int | None = None) -> Arch:
    """The arch a :class:`CreamClassifier` builds: ``arch`` with its class count replaced if given."""
    a = as_arch(arch)
    return a.with_(num_classes=int(num_classes)) if num_classes and num_classes != a.num_classes else a


@MODELS.register_module()
class CreamClassifier(BaseModel):
    """A Cream subnet trained from scratch on an image-classification dataset.

    Args:
        arch: published name (``cream_287``), arch file, arch dict or :class:`Arch`.
        num_classes: replaces the arch's class count (e.g. 10 for the digits demo).
        drop_rate: dropout before the classifier (the paper: 0.2).
        drop_path_rate: stochastic depth over the blocks (the authors: 0).
        label_smoothing: smoothing of the one-hot targets (the paper: 0.1).
        mixup: keyword arguments of timm's ``Mixup`` (e.g. ``dict(mixup_alpha=0.2)``), or None.
            Mixup needs an even batch; an odd one (the last of an epoch) is trained on smoothed
            one-hot targets instead.
        channels_last: NHWC memory format (faster convolutions with AMP on recent GPUs).
    """

    def __init__(self, arch: 'Arch | str | Mapping[str, Any]', num_classes: int | None = None,
                 drop_rate: float = 0.2, drop_path_rate: float = 0.0, label_smoothing: float = 0.1,
                 mixup: Mapping[str, Any] | None = None, channels_last: bool = False,
                 data_preprocessor: Mapping[str, Any] | None = None, init_cfg: Any = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.arch = classifier_arch(arch, num_classes)
        self.net = build_subnet(self.arch, drop_rate=drop_rate, drop_path_rate=drop_path_rate)
        self.channels_last = channels_last
        if channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        n = self.arch.num_classes
        self.mixup = Mixup(**{'label_smoothing': label_smoothing, 'num_classes': n, **mixup}) if mixup else None
        if self.mixup is not None:
            self.criterion: nn.Module = SoftTargetCrossEntropy()
        elif label_smoothing > 0:
            self.criterion = LabelSmoothingCrossEntropy(smoothing=label_smoothing)
        else:
            self.criterion = nn.CrossEntropyLoss()
        self._register_load_state_dict_pre_hook(self._accept_plain_keys)

    @property
    def num_classes(self) -> int:
        return self.arch.num_classes

    def forward(self, inputs: torch.Tensor, label: torch.Tensor | None = None,
                mode: str = 'tensor') -> 'torch.Tensor | dict[str, torch.Tensor] | list[dict[str, Any]]':
        """``'tensor'``: logits; ``'loss'``: ``{'loss'}``; ``'predict'``: one dict per image."""
        if self.channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        if mode == 'tensor':
            return self.net(inputs)
        if mode == 'loss':
            if label is None:
                raise ConfigError("CreamClassifier: mode='loss' needs labels (the dataset's 'label' field)")
            return self.loss(inputs, label)
        if mode == 'predict':
            return self.predict(inputs, label)
        raise ConfigError(f"CreamClassifier: unknown mode {mode!r} (use 'tensor', 'loss' or 'predict')")

    def loss(self, inputs: torch.Tensor, label: torch.Tensor) -> dict[str, torch.Tensor]:
        target: torch.Tensor = label
        if self.mixup is not None:
            if len(inputs) % 2 == 0:
                inputs, target = self.mixup(inputs, label)
            else:
                target = mixup_target(label, self.num_classes, 1.0, self.mixup.label_smoothing)
        return {'loss': self.criterion(self.net(inputs), target)}

    @torch.no_grad()
    def predict(self, inputs: torch.Tensor, label: torch.Tensor | None = None) -> list[dict[str, Any]]:
        scores = self.net(inputs).float().softmax(dim=1).cpu()
        labels = label.tolist() if label is not None else [-1] * len(scores)
        return [{'scores': s, 'pred_label': int(s.argmax()), 'gt_label': int(g)} for s, g in zip(scores, labels)]

    def _accept_plain_keys(self, state_dict: dict, prefix: str, *args: Any) -> None:
        """Load checkpoints of the bare subnet (converted official weights) by adding ``net.``."""
        own = prefix + NET
        keys = [k for k in state_dict if k.startswith(prefix)]
        if keys and not any(k.startswith(own) for k in keys):
            for k in keys:
                state_dict[own + k[len(prefix):]] = state_dict.pop(k)


@METRICS.register_module()
class CreamAccuracy(BaseMetric):
    """Top-k accuracy in percent, logged as ``top1``, ``top5`` (no prefix: see ``EMAValLoop``).

    Keeps one boolean per image and k, so a 50k-image val set costs nothing to gather across
    ranks; mmengine's ``collect_results`` drops the sampler's padding.
    """

    default_prefix = ''

    def __init__(self, topk: Sequence[int] = (1, 5), collect_device: str = 'cpu', prefix: str | None = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.topk = tuple(int(k) for k in topk)
        if not self.topk or min(self.topk) < 1:
            raise ConfigError(f'CreamAccuracy topk={topk}: expected positive integers such as (1, 5)')

    def process(self, data_batch: Any, data_samples: Sequence[Mapping[str, Any]]) -> None:
        for s in data_samples:
            scores = s['scores']
            order = scores.topk(min(max(self.topk), scores.numel())).indices.tolist()
            self.results.append(tuple(s['gt_label'] in order[:k] for k in self.topk))

    def compute_metrics(self, results: list) -> dict[str, float]:
        n = max(len(results), 1)
        return {f'top{k}': 100.0 * sum(r[i] for r in results) / n for i, k in enumerate(self.topk)}


__all__ = ['CreamAccuracy', 'CreamClassifier', 'classifier_arch']
