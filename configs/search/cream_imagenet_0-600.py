# Cream on ImageNet, 0-600M MACs: the paper's setting (reference: shared facts from the authors' code).
# Supernet depth from the range by the authors' rule: 4 layers per stage at 224 px. Data: the
# authors search on an ImageNet subset (first 100 classes x first 350 images: a folder of that
# layout at data/imagenet100_350) and evaluate candidates on held-out images.
#   tools/dist_search.sh configs/search/cream_imagenet_0-600.py 8
_base_ = './_base_search.py'
data_root = 'data/imagenet100_350'
num_classes = 100
batch_size = 128                        # per GPU, 8 GPUs

model = dict(macs_range=(0, 600e6), resolution=224, num_classes=num_classes,
             strategy=dict(type='cream', board_size=10, margin=5.0, slice_size=4, warmup_epochs=20,
                           teacher='meta', meta_interval=200, meta_lr=1e-4, board_acc='train_batch',
                           op_probs=None, constrain_macs=False))
train_dataloader = dict(
    batch_size=batch_size, num_workers=8, persistent_workers=True, pin_memory=True, drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True), collate_fn=dict(type='default_collate'),
    dataset=dict(type='CreamImageFolder', root=data_root, split='train', input_size=224,
                 auto_augment=None, interpolation='bilinear', color_jitter=0.4, re_prob=0.0))
search_val_dataloader = dict(
    batch_size=2 * batch_size, num_workers=8, sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='CreamImageFolder', root=data_root, split='val', input_size=224))

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=120)
# SGD, Nesterov, lr 1.0 at 1024 images (scaled linearly with the total batch), linear decay to 0
optim_wrapper = dict(optimizer=dict(type='SGD', lr=1.0, momentum=0.9, nesterov=True, weight_decay=1e-4),
                     paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
auto_scale_lr = dict(enable=True, base_batch_size=1024)
param_scheduler = [dict(type='LinearLR', start_factor=1.0, end_factor=0.0, by_epoch=True, begin=0, end=120,
                        convert_to_iter_based=True)]
final_pick = 'board'                    # the paper's choice; 'evolution' searches the supernet instead
evolution = dict(population=50, generations=20, parents=10, calib_batches=8)
