# The search toy config (tests/scripts/search_toy_cfg.py) with the DNA strategy. The teacher checkpoint
# is written by the test (a Cream net of the toy space) and passed with --cfg-options.
_base_ = './search_toy_cfg.py'
model = dict(strategy=dict(_delete_=True, type='dna', teacher=dict(checkpoint='set-by-the-test.pth')))
custom_hooks = [dict(type='SearchStateHook'), dict(type='SearchOutputsHook', plot=False)]
