# Faster R-CNN (FPN) with a Cream backbone: exactly mmdet's faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py
# (SGD lr 0.02 for 16 images, 12 epochs; the same bases, a test compares the two) with the backbone
# swapped. Per-net configs only name the arch and the pretrained checkpoint.
_base_ = ['../_base_/models/faster-rcnn_cream_fpn.py', 'mmdet::_base_/datasets/coco_detection.py',
          'mmdet::_base_/schedules/schedule_1x.py', 'mmdet::_base_/default_runtime.py']
