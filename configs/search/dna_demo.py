# DNA (block-wise distillation from a teacher) on the embedded digits: same supernet, data and MACs
# range as cream_demo.py; minutes on a CPU. The teacher is a Cream net retrained on the same digits:
#   python tools/make_demo_data.py data/demo/imagenet --kind imagenet
#   python tools/retrain.py configs/retrain/demo_digits.py --work-dir work_dirs/dna_teacher   # cream_14, ~2 min
#   python tools/search.py configs/search/dna_demo.py     # -> work_dirs/dna_demo/{arch.json,dna_scores.json}
# Any retrain checkpoint works as the teacher (it embeds its arch); so does a timm model with local
# weights: teacher=dict(timm='efficientnet_b0', checkpoint='...', kwargs=dict(num_classes=10)).
_base_ = './cream_demo.py'
teacher_checkpoint = 'work_dirs/dna_teacher/epoch_10.pth'

model = dict(strategy=dict(
    _delete_=True, type='dna', constrain_macs=False,
    teacher=dict(checkpoint=teacher_checkpoint,
                 how_to_make='make it with: python tools/retrain.py configs/retrain/demo_digits.py '
                             '--work-dir work_dirs/dna_teacher (after python tools/make_demo_data.py '
                             'data/demo/imagenet --kind imagenet)'),
    project='auto', stage0_input='auto', score_batches=None))
# optimizer and schedule: cream_demo's SGD (on this data it distils better in 5 epochs than the authors'
# Adam at lr 0.002: summed held-out loss 5.0 vs 6.7)
final_pick = 'dna'                      # score every stage candidate, then the exact best combination in the range
custom_hooks = [dict(type='SearchStateHook'), dict(type='SearchOutputsHook', plot=False)]
