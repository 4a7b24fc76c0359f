# SPOS baseline in the same setting: uniform single paths with cross-entropy, then evolution under
# the budget with inherited weights (BN recalibrated).
_base_ = './cream_imagenet_0-600.py'
model = dict(strategy=dict(_delete_=True, type='spos', constrain_macs=False))
final_pick = 'evolution'
