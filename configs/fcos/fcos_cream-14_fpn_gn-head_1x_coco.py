# FCOS + cream_14 on COCO, 1x. Convert the authors' ImageNet weights first:
#   tools/convert_official.py <authors' 14 checkpoint> checkpoints/cream_14.pth --arch cream_14
_base_ = './_cream_fpn_gn-head_1x_coco.py'
model = dict(backbone=dict(
    arch='cream_14',
    init_cfg=dict(type='Pretrained', checkpoint='checkpoints/cream_14.pth')))
