# RetinaNet + cream_481 on COCO, the efficient-backbone recipe (mmdet's EfficientNet-B3 RetinaNet). Convert
# the authors' ImageNet weights first:
#   tools/convert_official.py <authors' 481 checkpoint> checkpoints/cream_481.pth --arch cream_481
_base_ = './_cream_fpn_8xb4-crop896-1x_coco.py'
model = dict(backbone=dict(
    arch='cream_481',
    init_cfg=dict(type='Pretrained', checkpoint='checkpoints/cream_481.pth')))
