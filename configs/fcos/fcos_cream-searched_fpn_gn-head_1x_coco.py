# FCOS with a searched (and retrained) backbone. The retrain checkpoint embeds its arch, so only
# the checkpoint is needed (the FPN widths follow the backbone, whatever its space):
#   tools/train.py configs/fcos/fcos_cream-searched_fpn_gn-head_1x_coco.py \
#       --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/retrain/best.pth
# For an arch without ImageNet weights, set model.backbone.arch=path/to/arch.json and
# model.backbone.init_cfg=None instead.
_base_ = './_cream_fpn_gn-head_1x_coco.py'
model = dict(backbone=dict(
    init_cfg=dict(type='Pretrained', checkpoint='checkpoints/searched_retrained.pth')))
