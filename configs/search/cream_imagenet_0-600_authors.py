# Cream on ImageNet-1k, 0-600M MACs, with every switch at the authors' behaviour (microsoft/Cream,
# Cream/lib/core/train.py, lib/models/MetaMatchingNetwork.py, PrioritizedBoard.py; docs/fidelity.md
# names each difference and why cream_det's default differs). Bugs are not offered: m is the chosen
# entry's, the meta gradient follows every parameter of the path, per-op probabilities are not
# passed as numpy's `replace` (so sampling is uniform, which is what the authors' runs did).
#   tools/dist_search.sh configs/search/cream_imagenet_0-600_authors.py 8
_base_ = './cream_imagenet_0-600.py'
model = dict(strategy=dict(
    warmup_epochs=21,              # their loop trains on CE while epoch <= META_STA_EPOCH (20), 0-based: an
                                   # epoch count, exact at any iterations per epoch (warmup_fraction=0.175
                                   # ends at the same step only at 120 epochs)
    board_eval_batches=1,          # a path judged on its step's batch: 1,024 images at 8 GPUs x 128
    board_tiebreak='flops_desc',   # sorted((acc, flops, ...), reverse=True)
    meta_inner_lr='meta',          # simulate_sgd_update uses param_groups[-1]['lr']: the meta group's
    meta_inner_loss='kd',          # forward_training: meta_value * KD only
    meta_student_step=True,        # update_student_weights_only: a real step, clip-norm 1
    meta_clip_scope='meta_update', # the meta layer's first-order step is the supernet SGD's, unclipped
    grad_reset='zero',             # torch 1.2's zero_grad: every op ever sampled keeps a zero gradient,
                                   # so weight decay and momentum reach it at every step
))
