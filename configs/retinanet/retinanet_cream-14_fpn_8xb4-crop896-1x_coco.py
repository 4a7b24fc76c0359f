# RetinaNet + cream_14 on COCO, the efficient-backbone recipe (mmdet's EfficientNet-B3 RetinaNet). Convert
# the authors' ImageNet weights first:
#   tools/convert_official.py <authors' 14 checkpoint> checkpoints/cream_14.pth --arch cream_14
_base_ = './_cream_fpn_8xb4-crop896-1x_coco.py'
model = dict(backbone=dict(
    arch='cream_14',
    init_cfg=dict(type='Pretrained', checkpoint='checkpoints/cream_14.pth')))
