# Cream on ImageNet-1k, 0-600M MACs: the search the authors run (their train.yaml: full ImageNet,
# 1000 classes, 120 epochs at 8 GPUs x 128, lr 1.0 decayed linearly to 0; facts and file:line in
# docs/fidelity.md). Supernet depth from the range by the authors' rule: 4 layers per stage at 224 px.
# Data: an ImageNet folder at data/imagenet (train/<wnid>/*.JPEG, val/<wnid>/*.JPEG).
#   tools/dist_search.sh configs/search/cream_imagenet_0-600.py 8
# At 8 x 128 an epoch is 1,251 iterations: the meta update runs at batch indices 200, 400, ..., 1200,
# 6 per epoch after the 20 warm-up epochs, 600 in the search (the tool prints the count at start-up).
# The strategy's switches are at cream_det's defaults; cream_imagenet_0-600_authors.py sets each to
# the authors' behaviour, cream_imagenet100_0-600.py searches the 100-class subset instead.
_base_ = './_base_search.py'
data_root = 'data/imagenet'
num_classes = 1000
batch_size = 128                        # per GPU, 8 GPUs

model = dict(macs_range=(0, 600e6), resolution=224, num_classes=num_classes,
             strategy=dict(type='cream', board_size=10, margin=5.0, slice_size=4, warmup_epochs=20,
                           teacher='meta', selection='per_entry', board_acc='train_batch', board_targets='teacher',
                           board_tiebreak='macs_asc', label_smoothing=0.1,
                           matcher_init='uniform', matcher_grad='both',
                           meta_interval=200, meta_interval_by='epoch_iter', meta_lr=1e-4, meta_momentum=0.9,
                           meta_nesterov=True, meta_clip=1.0, meta_lr_decay=True,
                           meta_inner_lr='supernet', meta_inner_loss='blended', meta_student_step=False,
                           meta_clip_scope='every_step', grad_reset='none',
                           op_probs=None, constrain_macs=False))
train_dataloader = dict(
    batch_size=batch_size, num_workers=8, persistent_workers=True, pin_memory=True, drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True), collate_fn=dict(type='default_collate'),
    # the authors' search loader: random-resized crop with a random interpolation, flip, colour
    # jitter 0.4, random erasing 0.2
    dataset=dict(type='CreamImageFolder', root=data_root, split='train', input_size=224,
                 auto_augment=None, interpolation='random', color_jitter=0.4, re_prob=0.2))
search_val_dataloader = dict(
    batch_size=2 * batch_size, num_workers=8, sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='CreamImageFolder', root=data_root, split='val', input_size=224, interpolation='bilinear'))

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=120)
# SGD, Nesterov, lr 1.0 at 1024 images (scaled linearly with the total batch), linear decay to 0
optim_wrapper = dict(optimizer=dict(type='SGD', lr=1.0, momentum=0.9, nesterov=True, weight_decay=1e-4),
                     paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
auto_scale_lr = dict(enable=True, base_batch_size=1024)
param_scheduler = [dict(type='LinearLR', start_factor=1.0, end_factor=0.0, by_epoch=True, begin=0, end=120,
                        convert_to_iter_based=True)]
final_pick = 'board'                    # the paper's choice; 'evolution' searches the supernet instead
evolution = dict(population=50, generations=20, parents=10, calib_batches=8)
