# Demo: Faster R-CNN (FPN) + a Cream backbone on the embedded COCO-format digits
# (tools/make_demo_data.py), small enough to train on a CPU in minutes. Same model code as the COCO
# configs; the data, schedule and runtime are the demo ones of configs/_base_.
#   python tools/make_demo_data.py data/demo && python tools/train.py configs/faster_rcnn/faster-rcnn_cream-demo_fpn_digits.py
_base_ = ['../_base_/models/faster-rcnn_cream_fpn.py', '../_base_/datasets/coco_digits.py',
          '../_base_/schedules/digits_adamw_12e.py', '../_base_/digits_runtime.py']

model = dict(
    backbone=dict(arch='cream_14', frozen_stages=-1, norm_eval=False),   # from scratch unless init_cfg is set
    neck=dict(out_channels=64),
    rpn_head=dict(in_channels=64, feat_channels=64,
                  anchor_generator=dict(scales=[4])),     # anchors 16..256 px for 128 px images
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=64),
        bbox_head=dict(in_channels=64, fc_out_channels=256, num_classes=10)),
    train_cfg=dict(rpn_proposal=dict(nms_pre=500, max_per_img=200),
                   rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(rpn=dict(nms_pre=200, max_per_img=100), rcnn=dict(max_per_img=20)))
