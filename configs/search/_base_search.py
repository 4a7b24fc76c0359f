# Shared search settings: the supernet model, the hooks that keep the board and resume exact,
# DDP that lets a strategy own the step. Strategy, data and schedule come from the configs below.
custom_imports = dict(imports=['cream_det'], allow_failed_imports=False)
default_scope = None

# latency_table: a table file of tools/latency_table.py (or dict(measure=True, ...): measured at run time
# into the work dir); latency_range: (min, max) predicted ms the final arch must meet too, next to
# macs_range, for every strategy but MixPath (docs/latency.md); None: no latency limit
model = dict(type='SupernetSearch', space='cream_mbv3', macs_range=(0, 600e6), resolution=224,
             num_classes=1000, depths=None, seed=0, strategy=dict(type='cream'),
             latency_table=None, latency_range=None)
# a single path leaves most supernet weights unused in a step
model_wrapper_cfg = dict(type='SearchDDP', find_unused_parameters=True)
# parameter groups of equal settings merged (cream_det/engine/optim.py): a single-path step then walks
# two groups instead of one per supernet parameter, with the same update for every parameter
optim_wrapper = dict(constructor='GroupedOptimWrapperConstructor')
# NHWC weights where that was measured faster (the CPU: search step 1.3-1.6x, retraining 1.44x;
# benchmarks/README.md); off on CUDA until measured there. --[no-]channels-last overrides.
channels_last = 'auto'

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'))
custom_hooks = [dict(type='SearchStateHook'), dict(type='SearchOutputsHook')]
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='nccl'))
log_processor = dict(window_size=20, by_epoch=True)
randomness = dict(seed=0, diff_rank_seed=False)
log_level = 'INFO'
load_from = None
resume = False
