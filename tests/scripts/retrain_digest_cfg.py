# The retrain demo plus RankDigestHook (each rank's parameter and EMA digests), for the 2-process test.
_base_ = '../../configs/retrain/demo_digits.py'
custom_imports = dict(imports=['cream_det', 'tests.scripts.rank_digest_hook'], allow_failed_imports=False)
custom_hooks = [
    dict(type='EMAHook', ema_type='ExponentialMovingAverage', momentum=0.05, update_buffers=True),
    dict(type='EmbedArchHook'),
    dict(type='RankDigestHook'),
]
