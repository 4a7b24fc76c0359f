# The paper's transfer setting: RetinaNet with a Cream backbone, mmdet's 1x schedule on COCO
# (SGD lr 0.01 for 16 images = 8 GPUs x 2, 12 epochs, steps at 8 and 11, 500-iter warm-up),
# ImageNet-pretrained backbone, FPN over strides 8/16/32 plus two extra levels.
# Exactly mmdet's retinanet/retinanet_r50_fpn_1x_coco.py (the same bases and optimizer; a test compares
# the two) with the backbone swapped. Per-net configs only name the arch and the pretrained checkpoint.
_base_ = ['../_base_/models/retinanet_cream_fpn.py', 'mmdet::_base_/datasets/coco_detection.py',
          'mmdet::_base_/schedules/schedule_1x.py', 'mmdet::_base_/default_runtime.py',
          'mmdet::retinanet/retinanet_tta.py']
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001))
