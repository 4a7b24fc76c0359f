# Cream-114 (the published 114M-MACs net, 72.8 % top-1) retrained on ImageNet at its resolution
# (160 px) with the authors' recipe, microsoft/Cream@4a13c409 experiments/configs/retrain/114.yaml:
#   cosine with 10 cool-down epochs (114.yaml:39 SCHED 'cosine'), 510 epochs. 114.yaml itself
#   says SELECTION 470 (tools/retrain.py:88-89 raises on it) and MODEL '112m_retrain'.
#   tools/dist_retrain.sh configs/retrain/cream-114_imagenet.py 8       # docs/retrain.md: 8 or 16 GPUs
_base_ = './_base_retrain_imagenet.py'

arch = 'cream_114'
input_size = 160

model = dict(arch=arch)
train_dataloader = dict(dataset=dict(input_size=input_size))
val_dataloader = dict(dataset=dict(input_size=input_size))
test_dataloader = val_dataloader
