# The paper's transfer setting: RetinaNet with a Cream backbone, mmdet's 1x schedule on COCO
# (SGD lr 0.01 for 16 images = 8 GPUs x 2, 12 epochs, steps at 8 and 11, 500-iter warm-up),
# ImageNet-pretrained backbone, FPN over strides 8/16/32 plus two extra levels.
# Per-net configs only name the arch and the pretrained checkpoint.
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['cream_det'], allow_failed_imports=False)
# a NaN/inf loss stops training before it reaches a weight or a checkpoint, also under mmdet's own
# tools/train.py (docs/faults.md); dict(type='FiniteLossHook', on_nonfinite='skip') drops such steps instead
custom_hooks = [dict(type='FiniteLossHook')]

model = dict(
    backbone=dict(
        _delete_=True,
        type='CreamBackbone',
        # arch= (published name or arch file) and init_cfg=dict(type='Pretrained', checkpoint=...)
        # come from the per-net config; with a checkpoint that embeds its arch, arch may be omitted
        out_indices=(1, 2, 3, 4),       # strides 4, 8, 16, 32 -> 24, 40, 96, 320 channels
        frozen_stages=0,                # stem and first block frozen, as mmdet freezes ResNet's stem
        norm_eval=True),
    # CreamFPN is mmdet's FPN whose in_channels='auto' takes the widths of the CreamBackbone built
    # just before it, so swapping arch (even to another space's widths) needs no other change;
    # resolved inside mmdet's registry, so mmdet's own tools/train.py, test.py, get_flops.py run this
    neck=dict(type='CreamFPN', in_channels='auto', start_level=1, add_extra_convs='on_input', num_outs=5))
