# Retrain an arch found by the search (an arch.json/.yaml); the input size follows the arch file's
# resolution. The recipe is this project's choice: the authors' per-net recipe for their cosine nets
# (114.yaml ... 604.yaml, see _base_retrain_imagenet.py), not their generic retrain.yaml, which
# cannot run (SELECTION 42 raises at tools/retrain.py:88-89; SCHED 'sgd' is no timm scheduler, so
# create_scheduler returns none and the lr stays 1e-2; 200 epochs, dropout 0, EMA 0.9998). For a
# small searched net the authors' choice was step decay (14.yaml, 43.yaml): a copy of this file
# with _base_ = './_base_retrain_imagenet_step.py' trains it so.
#   python tools/retrain.py configs/retrain/searched_imagenet.py --arch work_dirs/search/arch.json
#   tools/dist_retrain.sh configs/retrain/searched_imagenet.py 8 --arch work_dirs/search/arch.json
_base_ = './_base_retrain_imagenet.py'

arch = None             # required: --arch FILE (or --cfg-options model.arch=FILE)
input_size = None       # filled from the arch's resolution by tools/retrain.py

model = dict(arch=arch)
train_dataloader = dict(dataset=dict(input_size=input_size))
val_dataloader = dict(dataset=dict(input_size=input_size))
test_dataloader = val_dataloader
