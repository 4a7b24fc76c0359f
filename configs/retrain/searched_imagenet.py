# Retrain an arch found by the search (an arch.json/.yaml) with the authors' recipe; the input
# size follows the arch file's resolution.
#   python tools/retrain.py configs/retrain/searched_imagenet.py --arch work_dirs/search/arch.json
#   tools/dist_retrain.sh configs/retrain/searched_imagenet.py 8 --arch work_dirs/search/arch.json
_base_ = './_base_retrain_imagenet.py'

arch = None             # required: --arch FILE (or --cfg-options model.arch=FILE)
input_size = None       # filled from the arch's resolution by tools/retrain.py

model = dict(arch=arch)
train_dataloader = dict(dataset=dict(input_size=input_size))
val_dataloader = dict(dataset=dict(input_size=input_size))
test_dataloader = val_dataloader
