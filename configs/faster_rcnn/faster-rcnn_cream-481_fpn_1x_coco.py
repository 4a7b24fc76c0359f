# Faster R-CNN (FPN) + cream_481 on COCO, 1x. Convert the authors' ImageNet weights first:
#   tools/convert_official.py <authors' 481 checkpoint> checkpoints/cream_481.pth --arch cream_481
_base_ = './_cream_fpn_1x_coco.py'
model = dict(backbone=dict(
    arch='cream_481',
    init_cfg=dict(type='Pretrained', checkpoint='checkpoints/cream_481.pth')))
