# Cream-114 (the published 114M-MACs net) retrained on ImageNet at its resolution (160 px), the authors' recipe.
#   tools/dist_retrain.sh configs/retrain/cream-114_imagenet.py 8
_base_ = './_base_retrain_imagenet.py'

arch = 'cream_114'
input_size = 160

model = dict(arch=arch)
train_dataloader = dict(dataset=dict(input_size=input_size))
val_dataloader = dict(dataset=dict(input_size=input_size))
test_dataloader = val_dataloader
