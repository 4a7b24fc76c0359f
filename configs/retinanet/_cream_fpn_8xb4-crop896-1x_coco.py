# The efficient-backbone RetinaNet recipe: exactly mmdet's efficientnet/retinanet_effb3_fpn_8xb4-crop896-1x_coco.py
# (a test compares the two) with the Cream backbone in EfficientNet-B3's place: 896 px random-resize-crop
# and flip, 8 GPUs x 4 images, SGD lr 0.04 without decay on norms, 1000-iteration warm-up, 12 epochs,
# steps at 8 and 11. The model is configs/_base_/models/retinanet-sepbn_cream_fpn.py.
# Per-net configs only name the arch and the pretrained checkpoint.
_base_ = ['../_base_/models/retinanet-sepbn_cream_fpn.py', 'mmdet::_base_/datasets/coco_detection.py',
          'mmdet::_base_/schedules/schedule_1x.py', 'mmdet::_base_/default_runtime.py']

image_size = (896, 896)
batch_augments = [dict(type='BatchFixedSizePad', size=image_size)]
model = dict(data_preprocessor=dict(batch_augments=batch_augments))

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=_base_.backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RandomResize', scale=image_size, ratio_range=(0.8, 1.2), keep_ratio=True),
    dict(type='RandomCrop', crop_size=image_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=_base_.backend_args),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(batch_size=4, num_workers=4, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader

optim_wrapper = dict(optimizer=dict(lr=0.04), paramwise_cfg=dict(norm_decay_mult=0, bypass_duplicate=True))
max_epochs = 12
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=1000),
    dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True, milestones=[8, 11], gamma=0.1),
]
train_cfg = dict(max_epochs=max_epochs)
env_cfg = dict(cudnn_benchmark=True)            # fixed-size batches
auto_scale_lr = dict(base_batch_size=32)        # 8 GPUs x 4 images
