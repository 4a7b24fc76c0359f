# Cream-114 with the paper's augmentation where its text differs from 114.yaml: AutoAugment (timm's
# 'original' ImageNet policy) instead of RandAugment rand-m9-mstd0.5, and no random erasing (the
# paper names none; the yaml's RE_PROB 0.2). Schedule, optimizer and the rest: cream-114_imagenet.py.
_base_ = './cream-114_imagenet.py'

train_dataloader = dict(dataset=dict(auto_augment='original', re_prob=0.0))
