# Demo: retrain cream_14 (at its 64 px resolution, 10 classes) on the embedded handwritten-digit
# ImageNet-layout set; reaches well above chance (10%) in a couple of minutes on a CPU.
# Same model, data and hook code as the ImageNet configs; the recipe is shortened and sped up.
#   python tools/make_demo_data.py data/demo --kind imagenet
#   python tools/retrain.py configs/retrain/demo_digits.py
#   python tools/test.py work_dirs/demo_digits/epoch_30.pth --data-root data/demo/imagenet
_base_ = './_base_retrain_imagenet.py'

arch = 'cream_14'
input_size = 64
data_root = 'data/demo/imagenet'

model = dict(arch=arch, num_classes=10)
train_dataloader = dict(
    batch_size=32, num_workers=0, persistent_workers=False, pin_memory=False, drop_last=False,
    dataset=dict(root=data_root, input_size=input_size,
                 auto_augment=None, interpolation='bicubic', scale=(0.5, 1.0), hflip=0.0,   # a mirrored digit is another glyph
                 color_jitter=0.0, re_prob=0.0))
val_dataloader = dict(
    batch_size=64, num_workers=0, persistent_workers=False, pin_memory=False,
    dataset=dict(root=data_root, input_size=input_size))
test_dataloader = val_dataloader

train_cfg = dict(max_epochs=30, val_interval=10)
optim_wrapper = dict(optimizer=dict(lr=0.004))
auto_scale_lr = dict(base_batch_size=32)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, end_factor=1.0, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='FractionalEpochStepLR', step_size=2.4, gamma=0.85, by_epoch=True, begin=0,
         convert_to_iter_based=True),
]
default_hooks = dict(logger=dict(interval=8), checkpoint=dict(interval=10, max_keep_ckpts=2))
custom_hooks = [
    dict(type='EMAHook', ema_type='ExponentialMovingAverage', momentum=0.02, update_buffers=True),
    dict(type='EmbedArchHook'),
]
env_cfg = dict(cudnn_benchmark=False)
