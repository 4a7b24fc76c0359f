# Cream on the embedded digits under a latency budget of THIS machine (docs/latency.md): the latency table
# is measured when the search starts (seconds at 64 px) into the work dir and reused
# on resume; the budget: at most the faster 60 % of what the supernet's paths can reach on it, searched
# 8 % under it so that the pick, timed whole, stays inside (latency_margin; docs/latency.md).
#   python tools/make_demo_data.py data/demo/imagenet --kind imagenet
#   python tools/search.py configs/search/cream_demo_latency.py
#       # -> work_dirs/cream_demo_latency/{latency_table.json,board.json,arch.json (with predicted ms)}
#   python tools/search.py configs/search/spos_demo_latency.py     # the evolution under the same range
# For a table of another device, measure it there (python tools/latency_table.py --space cream_mbv3 --res 64
# --num-classes 10 --out FILE) and set model.latency_table=FILE, latency_range=(min_ms, max_ms).
_base_ = './cream_demo.py'
model = dict(
    # MACs no longer the binding limit (depth-1 nets of this space have 7.1-11.8M): latency decides
    macs_range=(0, 50e6),
    # calibrate: a global correction fitted on 8 archs timed whole (the plain sum of blocks timed one
    # by one underestimates a whole net, docs/latency.md); anchor: every module and calibration arch timed
    # in turns with one anchor module, so a machine whose speed drifts while it measures prices them all
    # at one speed (this 2-core VM ran one net at 2.1 and 2.9 ms seconds apart; docs/latency.md)
    # (_delete_: the base's latency_table is None, which mmengine will not merge a dict into)
    latency_table=dict(_delete_=True, measure=True, warmup=10, repeats=30, threads=1, calibrate=8, anchor=True),
    # a budget (0 to an end given as % of the span the supernet's depths reach on the measured table:
    # fixed ms fit no unknown machine); a path of Cream's board is cheaper than another when it is
    # predicted faster
    latency_range=(0, '60%'),
    # the paths are held to 8 % under the budget: picks timed whole on this machine (anchored) landed
    # 0-11 % off their prediction, and 8 % kept all 16 such timings inside (docs/latency.md)
    latency_margin=0.08)
