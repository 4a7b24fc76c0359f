"""``CreamBackbone``: any searched or published Cream subnet as an mmdet backbone.

The backbone *is* the timm-built subnet in ``features_only`` mode, so weights trained or converted
for the classification net load into it key for key. Feature indices follow timm's feature levels
of the subnet: 0..4 = strides 2, 4, 8, 16, 32 (channels 16, 24, 40, 96, 320 in the paper's space);
the RetinaNet configs take (1, 2, 3, 4) and let the FPN start at stride 8 like mmdet's ResNet ones.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn as nn
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch.nn.modules.batchnorm import _BatchNorm

from ..errors import ConfigError
from ..models.checkpoint import check_fits, load_subnet
from ..models.subnet import FEATURE_STRIDES, build_subnet, feature_channels
from ..space import Arch
from .backbone_arch import pretrained_path, resolve_arch
from .neck import announce_channels

@MODELS.register_module()
class CreamBackbone(BaseModule):
    """Cream subnet backbone.

    Args:
        arch: published name (``cream_287``), arch file path, :class:`Arch` or arch dict; may be
            omitted when ``init_cfg`` is ``Pretrained`` from a checkpoint that embeds its arch.
        out_indices: feature levels to return (0..4 = strides 2..32).
        frozen_stages: -1 freezes nothing; k >= 0 freezes the stem (with the fixed first block)
            and the first k searchable stages, parameters and BatchNorm statistics alike.
        norm_eval: keep every BatchNorm in eval mode while training (statistics frozen).
        drop_path_rate: stochastic depth over the blocks.
        sync_bn: convert BatchNorm (timm's BatchNorm+activation layers included) to SyncBatchNorm;
            use this rather than the Runner's ``sync_bn``, whose torch conversion drops the
            activation folded into timm's ``BatchNormAct2d``. Without a distributed launch mmengine's
            Runner reverts SyncBN to BN (``revert_sync_batchnorm``), which drops that activation the
            same way; the next ``train()``/``eval()`` puts it back (:meth:`_restore_reverted_norm_act`).
        strict_load: refuse a detector checkpoint whose backbone weights do not fit this arch (see
            :meth:`_load_from_state_dict`); False gives mmengine's partial load with a warning.
    """

    def __init__(self, arch: 'Arch | str | dict | None' = None, out_indices: Sequence[int] = (1, 2, 3, 4),
                 frozen_stages: int = -1, norm_eval: bool = False, drop_path_rate: float = 0.0,
                 sync_bn: bool = False, strict_load: bool = True, init_cfg: Any = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.arch = resolve_arch(arch, init_cfg)
        out_indices = tuple(int(i) for i in out_indices)
        levels = len(feature_channels(self.arch))           # 5 in the paper's space; fewer in smaller ones
        if not out_indices or any(not 0 <= i < levels for i in out_indices) \
                or list(out_indices) != sorted(set(out_indices)):
            raise ConfigError(f'CreamBackbone out_indices={out_indices}: must be increasing, distinct, '
                              f'each in 0..{levels - 1} (strides {FEATURE_STRIDES[:levels]})')
        n_blocks = self.arch.space.num_stages + 2
        if not -1 <= frozen_stages <= n_blocks - 1:
            raise ConfigError(f'CreamBackbone frozen_stages={frozen_stages}: must be in -1..{n_blocks - 1}')
        self.out_indices = out_indices
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.net = build_subnet(self.arch, features_only=True, out_indices=out_indices,
                                drop_path_rate=drop_path_rate)
        self.sync_bn = sync_bn
        self.strict_load = strict_load
        if sync_bn:
            from timm.layers import convert_sync_batchnorm
            self.net = convert_sync_batchnorm(self.net)
        self._freeze_stages()
        announce_channels(self.out_channels)     # for a CreamFPN(in_channels='auto') built next

    @property
    def out_channels(self) -> tuple[int, ...]:
        """Channels of the returned features, e.g. for the FPN's ``in_channels``.

        Read off the built net (timm's feature info): timm rounds every width to a multiple of 8,
        so a space whose stage widths are not (e.g. 20) yields 24 here.
        """
        return tuple(int(c) for c in self.net.feature_info.channels())

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.net(x))

    # ---- freezing -------------------------------------------------------------------------------
    def _frozen_modules(self) -> list[nn.Module]:
        if self.frozen_stages < 0:
            return []
        mods = [self.net.conv_stem, self.net.bn1, self.net.blocks[0]]
        mods += [self.net.blocks[i] for i in range(1, self.frozen_stages + 1)]
        return mods

    def _freeze_stages(self) -> None:
        for m in self._frozen_modules():
            m.eval()
            for p in m.parameters():
                p.requires_grad = False

    def _restore_reverted_norm_act(self) -> int:
        """Undo what mmengine's ``revert_sync_batchnorm`` does to timm's ``SyncBatchNormAct``.

        The Runner reverts every SyncBN to a plain ``_BatchNormXd`` when training is not distributed
        (one GPU, a CPU): right for torch's SyncBN, but timm's layer also holds its activation (and
        drop), which the plain BN keeps as children and never calls, so the backbone silently loses
        every activation after a BN. Each such layer becomes timm's ``BatchNormAct2d`` again, built
        around the very same parameters and statistics (the optimizer already holds them). Returns
        how many layers were restored.
        """
        from timm.layers import BatchNormAct2d
        restored = 0
        for parent in list(self.net.modules()):
            for name, child in list(parent.named_children()):
                if (isinstance(child, _BatchNorm) and not isinstance(child, (BatchNormAct2d, nn.SyncBatchNorm))
                        and isinstance(getattr(child, 'act', None), nn.Module)):
                    layer = BatchNormAct2d(child.num_features, eps=child.eps, momentum=child.momentum,
                                           affine=child.affine, track_running_stats=child.track_running_stats,
                                           apply_act=False)
                    layer.weight, layer.bias = child.weight, child.bias
                    layer.running_mean, layer.running_var = child.running_mean, child.running_var
                    layer.num_batches_tracked = child.num_batches_tracked
                    layer.act, layer.drop = child.act, child.drop
                    layer.train(child.training)
                    setattr(parent, name, layer)
                    restored += 1
        if restored:
            from mmengine.logging import print_log
            print_log(f'CreamBackbone: {restored} SyncBN layers reverted to BN without their activation '
                      '(mmengine, not distributed); restored as BatchNormAct2d', logger='current')
        return restored

    def train(self, mode: bool = True) -> 'CreamBackbone':
        if self.sync_bn:
            self._restore_reverted_norm_act()
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self

    # ---- weights --------------------------------------------------------------------------------
    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args: Any, **kwargs: Any) -> None:
        """Refuse a detector checkpoint trained with another backbone arch.

        mmengine (``load_from``, ``tools/test.py``, mmdet's ``test.py``) loads a detector checkpoint
        non-strictly: when the config's arch is not the one trained (the training's
        ``--cfg-options model.backbone...`` forgotten at test time), the fitting tensors load, the rest
        stay random, a warning scrolls past and the mAP is quietly wrong. Here any backbone tensor of
        the checkpoint that this net lacks or has in another shape, or any of ours the checkpoint
        lacks while it holds others, is one clear error. A checkpoint without backbone weights at all
        (e.g. a head-only file) is left to mmengine.
        """
        if self.strict_load:
            theirs = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
            if theirs:
                ours = self.state_dict()
                bad = [k for k, v in theirs.items()
                       if k not in ours or tuple(getattr(v, 'shape', ())) != tuple(ours[k].shape)]
                missing = [k for k in ours if k not in theirs]
                if bad or missing:
                    first = bad[0] if bad else missing[0]
                    shape = lambda sd, k: tuple(sd[k].shape) if k in sd else 'absent'  # noqa: E731
                    raise ConfigError(
                        f'the checkpoint\'s backbone weights do not fit this CreamBackbone '
                        f'(arch {self.arch.name or self.arch.hash}): {len(bad)} tensors of another shape or '
                        f'unknown here, {len(missing)} missing, e.g. {prefix}{first} is '
                        f'{shape(theirs, first)} in the checkpoint and {shape(ours, first)} here. A detector '
                        'checkpoint needs the backbone it was trained with: give the test the same '
                        '--cfg-options model.backbone.* as the training (e.g. model.backbone.arch=None '
                        'model.backbone.init_cfg.checkpoint=<the retrain checkpoint>), or '
                        'model.backbone.strict_load=False to load what fits')
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def init_weights(self) -> None:
        """Load a ``Pretrained`` checkpoint strictly (every backbone key present, shapes equal).

        mmengine's generic loader only logs missing keys; a backbone silently half-initialised
        from the wrong checkpoint is the failure we refuse here.
        """
        path = pretrained_path(self.init_cfg)
        if path is None:
            super().init_weights()
            return
        _, sd = load_subnet(path, self.arch, drop_head=True, given_as='the backbone was configured with')
        check_fits(self.net, sd, path)
        self.net.load_state_dict(sd, strict=True)
        self._is_init = True

