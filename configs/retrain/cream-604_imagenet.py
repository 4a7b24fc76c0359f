# Cream-604 (the published 604M-MACs net) retrained on ImageNet at its resolution (224 px), the authors' recipe.
#   tools/dist_retrain.sh configs/retrain/cream-604_imagenet.py 8
_base_ = './_base_retrain_imagenet.py'

arch = 'cream_604'
input_size = 224

model = dict(arch=arch)
train_dataloader = dict(dataset=dict(input_size=input_size))
val_dataloader = dict(dataset=dict(input_size=input_size))
test_dataloader = val_dataloader
