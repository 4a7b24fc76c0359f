"""Run under torchrun by tests: a search, then each rank writes a digest of its parameters (supernet
and strategy modules) and of its board (codes, accuracies, stored images and soft targets; empty for
strategies without one), so the test can assert that every rank trained the same paths and holds the
same board. Optional third argument: config overrides as JSON."""
import hashlib
import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from cream_det.engine import load_config
from cream_det.engine.search_run import run_search

cfg_path, work_dir = sys.argv[1], sys.argv[2]
cfg = load_config(cfg_path, json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}, work_dir)
runner, _ = run_search(cfg)
model = runner.model.module if hasattr(runner.model, 'module') else runner.model


def digest(tensors):
    h = hashlib.sha256()
    for k, v in tensors:
        h.update(str(k).encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


board = getattr(model.strategy, 'board', None) or []           # strategies without a board (dna): empty
out = {'world': dist.get_world_size() if dist.is_initialized() else 1,
       'params': digest(sorted(model.named_parameters())),       # supernet and strategy modules (dna's bridges)
       'board_codes': [list(e.code) for e in board], 'board_acc': [e.acc for e in board],
       'board_tensors': digest([(i, t) for i, e in enumerate(board) for t in (e.images, e.soft)]),
       'history': [list(h) for h in model.strategy.history],
       'matcher': digest(sorted(getattr(model.strategy, 'matcher', torch.nn.Module()).state_dict().items()))}
rank = dist.get_rank() if dist.is_initialized() else 0
Path(work_dir, f'search_rank{rank}.json').write_text(json.dumps(out))
