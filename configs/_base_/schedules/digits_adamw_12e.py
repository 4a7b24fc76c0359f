# The demo detectors' schedule on the digits: 12 epochs as mmdet's 1x, but AdamW. On 200 images a
# detector (from scratch or from a digits-pretrained backbone) converges in a few hundred iterations;
# the COCO configs keep mmdet's SGD 1x schedule.
_base_ = 'mmdet::_base_/schedules/schedule_1x.py'

train_cfg = dict(max_epochs=12, val_interval=12)
optim_wrapper = dict(optimizer=dict(_delete_=True, type='AdamW', lr=0.002, weight_decay=0.05),
                     clip_grad=dict(max_norm=10, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=50),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True, milestones=[9, 11], gamma=0.1),
]
auto_scale_lr = dict(enable=False, base_batch_size=8)
