# MixPath on the embedded digits: same data, supernet depths and schedule as cream_demo.py, but every
# layer runs 1..max_paths ops at once (outputs summed, one shadow BN per number of active ops), and the
# arch comes from an evolutionary search over multi-path archs (BN recalibrated before each score).
#   python tools/make_demo_data.py data/demo/imagenet --kind imagenet
#   python tools/search.py configs/search/mixpath_demo.py    # -> work_dirs/mixpath_demo/arch.json (multi-path)
#   python tools/retrain.py configs/retrain/demo_digits.py --arch work_dirs/mixpath_demo/arch.json
# A multi-path layer costs the sum of its branches (one BN shared), so the budget is wider than
# Cream's 8-10M: paths of 1..2 ops per layer at 64 px (one layer per stage) span 7.4-19.5M MACs
# (median 13M); from 8M the range keeps most single-path archs, which tools/compare_strategies.py
# scores on every strategy's supernet.
_base_ = './cream_demo.py'
model = dict(macs_range=(8e6, 20e6),
             strategy=dict(_delete_=True, type='mixpath', max_paths=2, constrain_macs=True))
# the authors clip gradients at norm 5 (S1/train_search.py): a sum of several paths starts with larger ones
optim_wrapper = dict(clip_grad=dict(max_norm=5.0))
final_pick = 'evolution'
