# mmdet's Faster R-CNN (FPN) model (its _base_/models/faster-rcnn_r50_fpn.py) with the Cream backbone.
# Like ResNet's C2..C5, the Cream features at strides 4..32 feed the FPN from its first level
# (P2..P6, RoIs pooled from P2..P5).
_base_ = ['mmdet::_base_/models/faster-rcnn_r50_fpn.py', './cream_backbone.py']
model = dict(backbone=dict(_delete_=True, **_base_.cream_backbone), neck=dict(type='CreamFPN', in_channels='auto'))
