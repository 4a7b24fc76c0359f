# SPOS + evolution on the embedded digits under the latency budget of cream_demo_latency.py (the same
# table measured at run time, the same range): every evaluated path is predicted inside it.
#   python tools/search.py configs/search/spos_demo_latency.py   # -> work_dirs/spos_demo_latency/arch.json
_base_ = './cream_demo_latency.py'
model = dict(strategy=dict(_delete_=True, type='spos', constrain_macs=True))
final_pick = 'evolution'
