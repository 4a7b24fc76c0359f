# Cream-287 (the published 287M-MACs net, 77.6 % top-1) retrained on ImageNet at its resolution
# (224 px) with the authors' recipe, microsoft/Cream@4a13c409 experiments/configs/retrain/287.yaml:
#   cosine with 10 cool-down epochs (287.yaml:39 SCHED 'cosine'), 510 epochs. 287.yaml itself
#   says SELECTION 470, which tools/retrain.py:88-89 refuses (microsoft/Cream#160 set it to 287).
#   tools/dist_retrain.sh configs/retrain/cream-287_imagenet.py 8       # docs/retrain.md: 8 or 16 GPUs
_base_ = './_base_retrain_imagenet.py'

arch = 'cream_287'
input_size = 224

model = dict(arch=arch)
train_dataloader = dict(dataset=dict(input_size=input_size))
val_dataloader = dict(dataset=dict(input_size=input_size))
test_dataloader = val_dataloader
