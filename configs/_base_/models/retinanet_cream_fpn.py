# mmdet's RetinaNet model (its _base_/models/retinanet_r50_fpn.py) with the Cream backbone. CreamFPN is
# mmdet's FPN whose in_channels='auto' takes the widths of the CreamBackbone built just before it, so
# swapping arch (even to another space's widths) needs no other change.
_base_ = ['mmdet::_base_/models/retinanet_r50_fpn.py', './cream_backbone.py']
model = dict(backbone=dict(_delete_=True, **_base_.cream_backbone), neck=dict(type='CreamFPN', in_channels='auto'))
