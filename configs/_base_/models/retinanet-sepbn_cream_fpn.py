# RetinaNet for an efficient backbone, built as mmdet's efficientnet/retinanet_effb3_fpn_8xb4-crop896-1x_coco.py
# builds it for EfficientNet-B3: the backbone trained with its BatchNorm live and synchronised (norm_eval=False,
# SyncBN), nothing frozen, drop path 0.2; the FPN over strides 8/16/32 from its first input, BN after its
# 3x3 convs and ReLU before the extra levels; RetinaSepBNHead (convs shared across levels, BN per level).
# As in mmdet's config the neck and head take BN (SyncBN with several GPUs: norm_cfg=dict(type='SyncBN', ...)).
# Without a distributed launch mmengine's Runner reverts every SyncBN to BN (CreamBackbone then puts back
# the activations that revert drops from timm's layers), so this runs on one GPU or a CPU; several
# processes synchronise BN on GPUs only (torch's SyncBatchNorm refuses CPU tensors).
_base_ = './retinanet_cream_fpn.py'

model = dict(
    backbone=dict(out_indices=(2, 3, 4), frozen_stages=-1, norm_eval=False, sync_bn=True, drop_path_rate=0.2),
    neck=dict(start_level=0, relu_before_extra_convs=True, no_norm_on_lateral=True,
              norm_cfg=dict(type='BN', requires_grad=True)),
    bbox_head=dict(type='RetinaSepBNHead', num_ins=5, norm_cfg=dict(type='BN', requires_grad=True)),
    train_cfg=dict(assigner=dict(neg_iou_thr=0.5)))
