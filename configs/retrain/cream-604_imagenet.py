# Cream-604 (the published 604M-MACs net, 80.0 % top-1) retrained on ImageNet at its resolution
# (224 px) with the authors' recipe, microsoft/Cream@4a13c409 experiments/configs/retrain/604.yaml:
#   cosine with 10 cool-down epochs (604.yaml:39 SCHED 'cosine'), 510 epochs.
#   tools/dist_retrain.sh configs/retrain/cream-604_imagenet.py 8       # docs/retrain.md: 8 or 16 GPUs
_base_ = './_base_retrain_imagenet.py'

arch = 'cream_604'
input_size = 224

model = dict(arch=arch)
train_dataloader = dict(dataset=dict(input_size=input_size))
val_dataloader = dict(dataset=dict(input_size=input_size))
test_dataloader = val_dataloader
