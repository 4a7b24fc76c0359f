# Demo of the efficient-backbone recipe (configs/retinanet/_cream_fpn_8xb4-crop896-1x_coco.py) on the
# embedded digits: the same model (SyncBN backbone with live statistics, drop path, RetinaSepBNHead) and
# the same random-resize-crop, at the digits' 128 px and without flips; the demo data, schedule and runtime.
#   python tools/make_demo_data.py data/demo && python tools/train.py configs/retinanet/retinanet_cream-demo_fpn_crop128_digits.py
_base_ = ['../_base_/models/retinanet-sepbn_cream_fpn.py', '../_base_/datasets/coco_digits.py',
          '../_base_/schedules/digits_adamw_12e.py', '../_base_/digits_runtime.py']

crop_size = (128, 128)
model = dict(
    data_preprocessor=dict(batch_augments=[dict(type='BatchFixedSizePad', size=crop_size)]),
    backbone=dict(arch='cream_14'), neck=dict(out_channels=64),
    bbox_head=dict(num_classes=10, in_channels=64, feat_channels=64, stacked_convs=2,
                   anchor_generator=dict(octave_base_scale=2)),   # anchors 16..256 px for 128 px images
    test_cfg=dict(nms_pre=200, max_per_img=20))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomResize', scale=crop_size, ratio_range=(0.8, 1.2), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='PackDetInputs'),             # no flips: a mirrored digit is another glyph
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
