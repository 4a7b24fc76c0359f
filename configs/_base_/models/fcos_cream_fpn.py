# mmdet's FCOS model with the Cream backbone. mmdet writes this model inline in
# fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py (it has no _base_/models file for FCOS), so it is written
# out here; tests/test_config_layout.py checks it against mmdet's, setting by setting.
_base_ = './cream_backbone.py'
model = dict(
    type='FCOS',
    # mmdet's FCOS normalises for caffe-style ResNet weights (BGR, std 1); Cream's ImageNet weights
    # (timm) expect RGB with ImageNet mean/std, like mmdet's pytorch-style RetinaNet
    data_preprocessor=dict(type='DetDataPreprocessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                           bgr_to_rgb=True, pad_size_divisor=32),
    backbone=_base_.cream_backbone,
    # mmdet's FPN with in_channels taken from the CreamBackbone; P3-P7 from strides 8-32, P6 from P5
    neck=dict(type='CreamFPN', in_channels='auto', out_channels=256, start_level=1, add_extra_convs='on_output',
              num_outs=5, relu_before_extra_convs=True),
    bbox_head=dict(
        type='FCOSHead', num_classes=80, in_channels=256, stacked_convs=4, feat_channels=256,
        strides=[8, 16, 32, 64, 128],
        loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
        loss_bbox=dict(type='IoULoss', loss_weight=1.0),
        loss_centerness=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0)),
    test_cfg=dict(nms_pre=1000, min_bbox_size=0, score_thr=0.05, nms=dict(type='nms', iou_threshold=0.5),
                  max_per_img=100))
