# A search config on in-memory toy data (tests/search_testdata.py), tiny space, seconds on CPU.
custom_imports = dict(imports=['cream_det', 'tests.search_testdata'], allow_failed_imports=False)
tiny_space = dict(
    name='tiny_test_search', ops=['k3e3', 'k5e3', 'k3e6'], stem_channels=8,
    first_block='ds_r1_k3_s1_e1_c8_se0.25', last_channels=64, head_channels=128,
    stages=[dict(out_channels=16, stride=2, template='k3e3', max_depth=3),
            dict(out_channels=24, stride=2, template='k3e3', max_depth=3)])
model = dict(type='SupernetSearch', space=tiny_space, macs_range=(0, 10e6), resolution=32, num_classes=5,
             depths=(2, 2), seed=0,
             strategy=dict(type='cream', board_size=4, margin=5.0, warmup_iters=4, meta_interval=2))
train_dataloader = dict(batch_size=16, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=True),
                        collate_fn=dict(type='default_collate'), dataset=dict(type='_SearchToyData', n=96))
search_val_dataloader = dict(batch_size=32, num_workers=0, sampler=dict(type='DefaultSampler', shuffle=False),
                             collate_fn=dict(type='default_collate'), dataset=dict(type='_SearchToyData', n=64, seed=1))
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=4)
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4))
param_scheduler = [dict(type='LinearLR', start_factor=1.0, end_factor=0.0, by_epoch=False, begin=0, end=24)]
evolution = dict(population=8, generations=2, parents=3, crossover_num=3, mutation_num=3, calib_batches=2)
model_wrapper_cfg = dict(type='SearchDDP', find_unused_parameters=True)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1), logger=dict(type='LoggerHook', interval=2))
custom_hooks = [dict(type='SearchStateHook'), dict(type='SearchOutputsHook')]
randomness = dict(seed=0)
default_scope = None
