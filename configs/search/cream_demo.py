# Cream on the embedded handwritten digits (ImageNet layout, 64 px, 10 classes): minutes on a CPU.
#   python tools/make_demo_data.py data/demo/imagenet --kind imagenet
#   python tools/search.py configs/search/cream_demo.py     # -> work_dirs/cream_demo/{board.json,arch.json,board.png}
_base_ = './_base_search.py'
data_root = 'data/demo/imagenet'

# One layer per stage and candidates initialised as slices of each layer's largest one
# (init='aligned'): with a few hundred steps, a deeper supernet of independently initialised
# candidates stays near chance on every path, and the board would rank noise (docs/guide.md).
model = dict(macs_range=(8e6, 10e6), resolution=64, num_classes=10, depths=(1, 1, 1, 1, 1), init='aligned',
             # constrain_macs: only paths inside the range train (and enter the board), so the board's
             # pick is in range after a short run; the authors train every path (docs/fidelity.md)
             strategy=dict(type='cream', board_size=5, margin=5.0, slice_size=4, warmup_epochs=2,
                           teacher='meta', meta_interval=10, board_acc='train_batch', constrain_macs=True,
                           # the matcher's lr scaled to the demo's ~260 distillation steps (an ImageNet
                           # search makes ~125,000 at 1e-4): at 1e-4 the matcher would end where it started
                           # (|W - W_init| 9e-4 of |W| 3.15; 0.087 at 1e-2; docs/guide.md)
                           meta_lr=1e-2))
train_dataloader = dict(
    batch_size=32, num_workers=0, drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True), collate_fn=dict(type='default_collate'),
    # deterministic transforms: a resumed search then replays exactly the uninterrupted one
    dataset=dict(type='CreamImageFolder', root=data_root, split='train', input_size=64, is_training=False,
                 crop_pct=1.0))
search_val_dataloader = dict(
    batch_size=64, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='CreamImageFolder', root=data_root, split='val', input_size=64, crop_pct=1.0))
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=8)
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.02, momentum=0.9, nesterov=True, weight_decay=1e-4),
                     paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
param_scheduler = [dict(type='LinearLR', start_factor=1.0, end_factor=0.0, by_epoch=True, begin=0, end=8,
                        convert_to_iter_based=True)]
default_hooks = dict(logger=dict(interval=10))
final_pick = 'board'
evolution = dict(population=12, generations=3, parents=4, crossover_num=4, mutation_num=4, calib_batches=4)
