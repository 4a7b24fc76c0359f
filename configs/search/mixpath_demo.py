# MixPath on the embedded digits: same data, supernet depths and schedule as cream_demo.py, but every
# layer runs k ~ U{1..max_paths} ops at once (outputs summed, one shadow BN per k), and the final search
# is the paper's NSGA-II over (inherited top-1 after BN recalibration, MACs) of multi-path archs.
#   python tools/make_demo_data.py data/demo/imagenet --kind imagenet
#   python tools/search.py configs/search/mixpath_demo.py
#       # -> work_dirs/mixpath_demo/{arch.json (multi-path), pareto.json, pareto.png}
#   python tools/retrain.py configs/retrain/demo_digits.py --arch work_dirs/mixpath_demo/arch.json
# A multi-path layer costs the sum of its branches (one BN shared), so the budget is wider than
# Cream's 8-10M: paths of 1..2 ops per layer at 64 px (one layer per stage) span 7.1-20.8M MACs
# (median 13.0M) and 99.8% of them lie in 8-20M; the range keeps 94% of the single-path archs (7.1-11.8M),
# which tools/compare_strategies.py scores on every strategy's supernet (and MixPath's on multi-path
# archs too).
_base_ = './cream_demo.py'
model = dict(macs_range=(8e6, 20e6),
             # constrain_macs: the authors train every path; here paths outside the range are not
             # trained, and each draw keeps its widths k (only its op sets are redrawn), so k stays uniform
             strategy=dict(_delete_=True, type='mixpath', max_paths=2, constrain_macs=True))
# the authors clip gradients at norm 5 (S1/train_search.py): a sum of several paths starts with larger ones
optim_wrapper = dict(clip_grad=dict(max_norm=5.0))
final_pick = 'pareto'                   # NSGA-II -> pareto.json, pareto.png; the front's best inside macs_range
# population, generations and rates are not published; calib_batches: BN recalibration per candidate
pareto = dict(population=12, generations=4, mutation_prob=0.1, crossover_prob=0.9, calib_batches=4)
