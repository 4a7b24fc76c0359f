# The authors' recipe for Cream-14 and Cream-43: _base_retrain_imagenet.py with their yamls'
# SCHED 'step' (Cream/experiments/configs/retrain/{14,43}.yaml:39): timm's StepLRScheduler,
# lr 0.064 x 0.973 ** (epoch // 2.4) after the 3 warm-up epochs from 1e-6 (the decay counts from
# epoch 0, so the first post-warm-up epoch already trains at 0.064 x 0.973), once per epoch; no
# cool-down (create_scheduler adds it for cosine only): 500 epochs.
_base_ = './_base_retrain_imagenet.py'

train_cfg = dict(max_epochs=500)
param_scheduler = [
    dict(type='TimmStepLR', decay_t=2.4, decay_rate=0.973, warmup_t=3, warmup_lr_init=1e-6, by_epoch=True),
]
