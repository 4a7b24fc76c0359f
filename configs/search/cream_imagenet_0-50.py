# Cream on ImageNet for a small budget, 0-50M MACs: by the authors' rule the supernet has one layer
# per stage and the resolution drops to 160 (the published small nets are searched at low resolution).
_base_ = './cream_imagenet_0-600.py'
model = dict(macs_range=(0, 50e6), resolution=160)
train_dataloader = dict(dataset=dict(input_size=160))
search_val_dataloader = dict(dataset=dict(input_size=160))
