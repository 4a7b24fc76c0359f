# DNA (block-wise distillation from a teacher) on the embedded digits, as its authors run it: stage
# after stage (its own Adam, learning rate and x0.9 decay per epoch), cells of depth 1 and 2 per stage
# rated together by the relative L1 loss mean|Y'-Y|/std(Y), then the exact best combination inside the
# MACs range. Same data and 64 px as cream_demo.py; minutes on a CPU. The teacher is a Cream net
# retrained on the same digits:
#   python tools/make_demo_data.py data/demo/imagenet --kind imagenet
#   python tools/retrain.py configs/retrain/demo_digits.py --work-dir work_dirs/dna_teacher   # cream_14, ~2 min
#   python tools/search.py configs/search/dna_demo.py     # -> work_dirs/dna_demo/{arch.json,dna_scores.json}
# Any retrain checkpoint works as the teacher (it embeds its arch); so does a timm model with local
# weights: teacher=dict(timm='efficientnet_b0', checkpoint='...', kwargs=dict(num_classes=10)).
_base_ = './cream_demo.py'
teacher_checkpoint = 'work_dirs/dna_teacher/epoch_10.pth'
stage_epochs = 2                        # the authors: 20 per block (docs/fidelity.md: what that is at ImageNet scale)

# two layers per stage: every stage rates 6 one-layer and 36 two-layer cells (5 x 42 = 210 cells).
# The range sits where the depths compete: nets of depth-1 cells have 7.1-11.8M MACs, of depth-2 cells
# 13.4-24.6M, so inside 11-16M some stages take one layer and others two.
model = dict(depths=(2, 2, 2, 2, 2), macs_range=(11e6, 16e6), strategy=dict(
    _delete_=True, type='dna', constrain_macs=False,
    teacher=dict(checkpoint=teacher_checkpoint,
                 how_to_make='make it with: python tools/retrain.py configs/retrain/demo_digits.py '
                             '--work-dir work_dirs/dna_teacher (after python tools/make_demo_data.py '
                             'data/demo/imagenet --kind imagenet)'),
    project='auto', stage0_input='auto', score_batches=None,
    rating='relative_l1',               # the authors' cl_loss; 'mse' rates by the training loss
    cell_depths='all',                  # 1..2 here (the space allows 1..6; deeper cells need deeper model.depths)
    schedule='blockwise', stage_epochs=stage_epochs,
    # stage_lr: the authors' per-block Adam rates (0.002, 0.005, 0.005, 0.005, 0.005) by default
    lr_decay=0.9, clip_grad=None))      # the authors do not clip; clip_grad=x would clip each stage on its own
# blockwise: one stage after another, stage_epochs each. The engine's optimizer is built but never
# stepped (each stage has its own Adam), so its schedule below does not matter.
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=5 * stage_epochs)
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=True, begin=0, end=5 * stage_epochs)]
final_pick = 'dna'                      # rate every cell of every stage, then the exact best combination in the range
custom_hooks = [dict(type='SearchStateHook'), dict(type='SearchOutputsHook', plot=False)]
