# Demo: retrain cream_14 (at its 64 px resolution, 10 classes) on the embedded handwritten-digit
# ImageNet-layout set (tools/make_demo_data.py: 1,438 train / 359 val images): ~99% top-1
# (chance: 10%) after 10 epochs, under two minutes on one CPU core (OMP_NUM_THREADS=1 on a busy box).
# Same model, data, hook and schedule code as the ImageNet configs; the recipe is scaled down:
# 10 epochs, 1 warm-up epoch, decay x0.85 every 2.4 epochs, lr 0.004 for batch 32, no RandAugment,
# random erasing or flips (a mirrored digit is another glyph), a milder random crop, a short EMA.
#   python tools/make_demo_data.py data/demo/imagenet --kind imagenet
#   python tools/retrain.py configs/retrain/demo_digits.py
#   python tools/test.py work_dirs/demo_digits/epoch_10.pth --data-root data/demo/imagenet
_base_ = './_base_retrain_imagenet.py'

arch = 'cream_14'
input_size = 64
data_root = 'data/demo/imagenet'

model = dict(arch=arch, num_classes=10)
train_dataloader = dict(
    batch_size=32, num_workers=0, persistent_workers=False, pin_memory=False, drop_last=False,
    dataset=dict(root=data_root, input_size=input_size, auto_augment=None, interpolation='bicubic',
                 scale=(0.5, 1.0), hflip=0.0, color_jitter=0.0, re_prob=0.0))
val_dataloader = dict(
    batch_size=64, num_workers=0, persistent_workers=False, pin_memory=False,
    dataset=dict(root=data_root, input_size=input_size))
test_dataloader = val_dataloader

train_cfg = dict(max_epochs=10, val_interval=5)
optim_wrapper = dict(optimizer=dict(lr=0.004))
auto_scale_lr = dict(enable=True, base_batch_size=32)    # the lr follows the GPU count (the ImageNet configs: off)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, end_factor=1.0, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='FractionalEpochStepLR', step_size=2.4, gamma=0.85, by_epoch=True, begin=0,
         convert_to_iter_based=True),
]
default_hooks = dict(logger=dict(interval=15), checkpoint=dict(interval=5, max_keep_ckpts=2))
custom_hooks = [
    # a few hundred steps in all: a short-memory EMA (the ImageNet configs: 1e-4 over ~600k steps)
    dict(type='EMAHook', ema_type='ExponentialMovingAverage', momentum=0.05, update_buffers=True),
    dict(type='EmbedArchHook'),
]
env_cfg = dict(cudnn_benchmark=False)
