# The Cream backbone as the detector configs take it, written once: a model base swaps it for mmdet's
# ResNet-50 with `backbone=dict(_delete_=True, **_base_.cream_backbone)`. cream_det registers
# CreamBackbone and CreamFPN in mmdet's registry, so mmdet's own tools (train.py, test.py,
# get_flops.py) need only this import.
custom_imports = dict(imports=['cream_det'], allow_failed_imports=False)

cream_backbone = dict(
    type='CreamBackbone',
    # arch= (published name or arch file) and init_cfg=dict(type='Pretrained', checkpoint=...) come from
    # the per-net config; with a checkpoint that embeds its arch, arch may be omitted
    out_indices=(1, 2, 3, 4),       # strides 4, 8, 16, 32 -> 24, 40, 96, 320 channels in the paper's space
    # As mmdet's ResNet configs (frozen_stages=1: the stem and layer1, everything that feeds the
    # stride-4 output): here the stem, the fixed first block and the stride-4 stage. 0 freezes the stem
    # and the first block only, -1 nothing (docs/fidelity.md, "Detection transfer").
    frozen_stages=1,
    norm_eval=True)

# A NaN/inf loss stops training before it reaches a weight or a checkpoint, also under mmdet's own
# tools/train.py (docs/faults.md); dict(type='FiniteLossHook', on_nonfinite='skip') drops such steps instead.
custom_hooks = [dict(type='FiniteLossHook')]
