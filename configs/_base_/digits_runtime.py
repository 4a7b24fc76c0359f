# mmdet's default runtime for the digits demos: a log line every 10 iterations, one checkpoint at the
# end, a fixed seed.
_base_ = 'mmdet::_base_/default_runtime.py'

default_hooks = dict(logger=dict(interval=10), checkpoint=dict(interval=12, max_keep_ckpts=1))
randomness = dict(seed=0)
