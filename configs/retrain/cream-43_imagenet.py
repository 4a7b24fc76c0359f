# Cream-43 (the published 43M-MACs net, 66.3 % top-1) retrained on ImageNet at its resolution
# (96 px) with the authors' recipe, microsoft/Cream@4a13c409 experiments/configs/retrain/43.yaml:
#   step decay (43.yaml:39 SCHED 'step'), 500 epochs.
#   tools/dist_retrain.sh configs/retrain/cream-43_imagenet.py 8       # docs/retrain.md: 8 or 16 GPUs
_base_ = './_base_retrain_imagenet_step.py'

arch = 'cream_43'
input_size = 96

model = dict(arch=arch)
train_dataloader = dict(dataset=dict(input_size=input_size))
val_dataloader = dict(dataset=dict(input_size=input_size))
test_dataloader = val_dataloader
