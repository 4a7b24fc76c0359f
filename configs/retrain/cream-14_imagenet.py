# Cream-14 (the published 14M-MACs net) retrained on ImageNet at its resolution (64 px), the authors' recipe.
#   tools/dist_retrain.sh configs/retrain/cream-14_imagenet.py 8
_base_ = './_base_retrain_imagenet.py'

arch = 'cream_14'
input_size = 64

model = dict(arch=arch)
train_dataloader = dict(dataset=dict(input_size=input_size))
val_dataloader = dict(dataset=dict(input_size=input_size))
test_dataloader = val_dataloader
