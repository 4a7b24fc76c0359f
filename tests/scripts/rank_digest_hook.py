"""Test helper: after training, every rank writes digests of its parameters and of its EMA copy
(``<work_dir>/digest_rank<r>.json``), so a test can assert that DDP kept the ranks identical."""
import hashlib
import json
from pathlib import Path

from mmengine.dist import get_rank, get_world_size
from mmengine.hooks import EMAHook, Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS


def _digest(named) -> str:
    h = hashlib.sha256()
    for k, v in sorted(named):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


@HOOKS.register_module(force=True)
class RankDigestHook(Hook):
    priority = 'LOWEST'

    def after_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        ema = next((h for h in runner.hooks if isinstance(h, EMAHook)), None)
        out = {'rank': get_rank(), 'world': get_world_size(), 'params': _digest(model.named_parameters()),
               'ema': _digest(ema.ema_model.named_parameters()) if ema else None}
        Path(runner.work_dir, f'digest_rank{get_rank()}.json').write_text(json.dumps(out))
