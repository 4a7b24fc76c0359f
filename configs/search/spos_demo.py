# SPOS + evolution on the embedded digits: same supernet, data and budget as cream_demo.py.
_base_ = './cream_demo.py'
model = dict(strategy=dict(_delete_=True, type='spos', constrain_macs=True))
final_pick = 'evolution'
