# Faster R-CNN (FPN) with a Cream backbone: mmdet's own faster-rcnn_r50_fpn_1x_coco (SGD lr 0.02 for
# 16 images, 12 epochs) with the backbone swapped. Like ResNet's C2..C5, the Cream features at
# strides 4..32 feed the FPN from its first level (P2..P6, RoIs pooled from P2..P5).
# Per-net configs only name the arch and the pretrained checkpoint.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['cream_det'], allow_failed_imports=False)
# a NaN/inf loss stops training before it reaches a weight or a checkpoint, also under mmdet's own
# tools/train.py (docs/faults.md); dict(type='FiniteLossHook', on_nonfinite='skip') drops such steps instead
custom_hooks = [dict(type='FiniteLossHook')]

model = dict(
    backbone=dict(
        _delete_=True,
        type='CreamBackbone',
        out_indices=(1, 2, 3, 4),       # strides 4, 8, 16, 32 -> 24, 40, 96, 320 channels in the paper's space
        frozen_stages=0,
        norm_eval=True),
    neck=dict(type='CreamFPN', in_channels='auto'))
