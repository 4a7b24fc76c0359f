# Demo: FCOS + a Cream backbone on the embedded COCO-format digits (tools/make_demo_data.py), small
# enough to train on a CPU in minutes. Same model code as the COCO configs; the data, schedule and
# runtime are the demo ones of configs/_base_.
#   python tools/make_demo_data.py data/demo && python tools/train.py configs/fcos/fcos_cream-demo_fpn_digits.py
_base_ = ['../_base_/models/fcos_cream_fpn.py', '../_base_/datasets/coco_digits.py',
          '../_base_/schedules/digits_adamw_12e.py', '../_base_/digits_runtime.py']

model = dict(
    backbone=dict(arch='cream_14', frozen_stages=-1, norm_eval=False),   # from scratch unless init_cfg is set
    neck=dict(out_channels=64),
    bbox_head=dict(num_classes=10, in_channels=64, feat_channels=64, stacked_convs=2),   # GN: 32 groups of 2
    test_cfg=dict(nms_pre=200, max_per_img=20))
