# FCOS with a Cream backbone: mmdet's own FCOS 1x config (GN head, SGD lr 0.01 for 16 images,
# 12 epochs) on COCO, with the backbone swapped exactly as in the RetinaNet configs.
# Per-net configs only name the arch and the pretrained checkpoint.
_base_ = 'mmdet::fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py'
custom_imports = dict(imports=['cream_det'], allow_failed_imports=False)
# a NaN/inf loss stops training before it reaches a weight or a checkpoint, also under mmdet's own
# tools/train.py (docs/faults.md); dict(type='FiniteLossHook', on_nonfinite='skip') drops such steps instead
custom_hooks = [dict(type='FiniteLossHook')]

model = dict(
    # mmdet's FCOS normalises for caffe-style ResNet weights (BGR, std 1); Cream's ImageNet weights
    # (timm) expect RGB with ImageNet mean/std, like mmdet's pytorch-style RetinaNet
    data_preprocessor=dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], bgr_to_rgb=True),
    backbone=dict(
        _delete_=True,
        type='CreamBackbone',
        out_indices=(1, 2, 3, 4),       # strides 4, 8, 16, 32; the FPN starts at stride 8 (start_level=1)
        frozen_stages=0,
        norm_eval=True),
    # mmdet's FPN with in_channels taken from the CreamBackbone (start_level=1, add_extra_convs='on_output',
    # relu_before_extra_convs from mmdet's FCOS config)
    neck=dict(type='CreamFPN', in_channels='auto'))
