"""Run under torchrun by tests: train a config a few iterations, then each rank writes a digest of
its parameters, so the test can assert that the ranks agree (DDP really synchronised them)."""
import hashlib
import json
import sys
from pathlib import Path

import torch.distributed as dist

from cream_det.engine import load_config, train

cfg_path, work_dir, iters = sys.argv[1], sys.argv[2], int(sys.argv[3])
extra = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
cfg = load_config(cfg_path, extra, work_dir)
cfg.merge_from_dict({'train_cfg': dict(_delete_=True, type='IterBasedTrainLoop', max_iters=iters,
                                       val_interval=10 ** 9),
                     'param_scheduler': [], 'val_cfg': None, 'val_dataloader': None, 'val_evaluator': None,
                     'default_hooks.checkpoint': dict(_delete_=True, type='CheckpointHook', by_epoch=False,
                                                      interval=10 ** 9)})
runner = train(cfg)
model = runner.model.module if hasattr(runner.model, 'module') else runner.model
h = hashlib.sha256()
# parameters (what DDP keeps in sync); BN running statistics are rank-local as in mmdet (no SyncBN)
for k, v in sorted(model.named_parameters()):
    h.update(k.encode())
    h.update(v.detach().cpu().contiguous().numpy().tobytes())
rank = dist.get_rank() if dist.is_initialized() else 0
world = dist.get_world_size() if dist.is_initialized() else 1
Path(work_dir, f'digest_rank{rank}.json').write_text(json.dumps({'rank': rank, 'world': world,
                                                                 'digest': h.hexdigest()}))
