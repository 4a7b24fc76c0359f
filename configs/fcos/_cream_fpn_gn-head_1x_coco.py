# FCOS with a Cream backbone: mmdet's own fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py (GN head, SGD lr
# 0.01 for 16 images, bias lr x2 without decay, 12 epochs; the same bases and schedule, a test compares
# the two) with the backbone swapped as in the RetinaNet configs and ImageNet RGB normalisation.
# Per-net configs only name the arch and the pretrained checkpoint.
_base_ = ['../_base_/models/fcos_cream_fpn.py', 'mmdet::_base_/datasets/coco_detection.py',
          'mmdet::_base_/schedules/schedule_1x.py', 'mmdet::_base_/default_runtime.py']

param_scheduler = [
    dict(type='ConstantLR', factor=1.0 / 3, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True, milestones=[8, 11], gamma=0.1),
]
optim_wrapper = dict(optimizer=dict(lr=0.01), paramwise_cfg=dict(bias_lr_mult=2., bias_decay_mult=0.),
                     clip_grad=dict(max_norm=35, norm_type=2))
