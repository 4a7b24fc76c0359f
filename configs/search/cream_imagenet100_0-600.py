# Cream, 0-600M MACs, on the authors' ImageNet subset (their tools/generate_subImageNet.py: the first
# 100 classes, the first 350 images of each). The authors use the subset for their rank-correlation
# study, not for the search; here it is the quick option (an epoch is 34 iterations at 8 x 128, so
# the meta update runs every 10 batch indices: 3 per epoch, 300 in the search; at the ImageNet
# config's 200 it would never run, and the tool refuses such a schedule).
#   tools/dist_search.sh configs/search/cream_imagenet100_0-600.py 8
_base_ = './cream_imagenet_0-600.py'
data_root = 'data/imagenet100_350'
num_classes = 100
model = dict(num_classes=num_classes, strategy=dict(meta_interval=10))
train_dataloader = dict(dataset=dict(root=data_root))
search_val_dataloader = dict(dataset=dict(root=data_root))
