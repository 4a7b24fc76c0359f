# Cream-43 (the published 43M-MACs net) retrained on ImageNet at its resolution (96 px), the authors' recipe.
#   tools/dist_retrain.sh configs/retrain/cream-43_imagenet.py 8
_base_ = './_base_retrain_imagenet.py'

arch = 'cream_43'
input_size = 96

model = dict(arch=arch)
train_dataloader = dict(dataset=dict(input_size=input_size))
val_dataloader = dict(dataset=dict(input_size=input_size))
test_dataloader = val_dataloader
