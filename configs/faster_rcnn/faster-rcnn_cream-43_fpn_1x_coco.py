# Faster R-CNN (FPN) + cream_43 on COCO, 1x. Convert the authors' ImageNet weights first:
#   tools/convert_official.py <authors' 43 checkpoint> checkpoints/cream_43.pth --arch cream_43
_base_ = './_cream_fpn_1x_coco.py'
model = dict(backbone=dict(
    arch='cream_43',
    init_cfg=dict(type='Pretrained', checkpoint='checkpoints/cream_43.pth')))
