# FCOS + cream_604 on COCO, 1x. Convert the authors' ImageNet weights first:
#   tools/convert_official.py <authors' 604 checkpoint> checkpoints/cream_604.pth --arch cream_604
_base_ = './_cream_fpn_gn-head_1x_coco.py'
model = dict(backbone=dict(
    arch='cream_604',
    init_cfg=dict(type='Pretrained', checkpoint='checkpoints/cream_604.pth')))
