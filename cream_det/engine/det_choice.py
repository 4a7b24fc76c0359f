"""Detection-aware choice of a board path: brief RetinaNet fine-tunes from inherited weights, ranked by mAP.

``tools/choose_det_arch.py SEARCH_WORK_DIR DET_CONFIG`` runs :func:`choose_det_arch`:

1. reads the search's ``board.json`` and latest supernet checkpoint (``last_checkpoint``, or
   ``--checkpoint``); keeps the board paths inside the search's MACs range (from
   ``search_summary.json``, when the search finished) and, with ``--top N``, the best N;
2. exports each path's supernet-inherited weights as a retrain-style checkpoint with the arch
   embedded (``candidates/<board rank>_<hash>/inherited.pth``);
3. trains ``DET_CONFIG`` (whose ``model.backbone`` must be a ``CreamBackbone``) with
   ``init_cfg=Pretrained(inherited.pth)`` — the arch comes from the checkpoint — for a short
   fine-tune (``--epochs``, default 1, or ``--iters``), then evaluates once with the config's
   ``val_evaluator`` (COCO bbox mAP);
4. writes ``results.json`` after every candidate, and at the end ``ranking.json``,
   ``ranking.md`` (rank, board rank, arch, MACs, params, board acc, bbox mAP, mAP50) and the
   winner's ``arch.json``.

Candidates run one after another in this process, each with its own Runner, work dir and
experiment name (mmengine's logger, message hub and visualizer are per-name singletons), and
with the same seed, re-applied just before weights are initialised, so the neck and head start
identical for every path and the ranking compares archs, not luck. When training starts, a hook
checks that the backbone holds exactly the inherited weights (a config's ``load_from`` or
model-level ``init_cfg`` would silently replace them) and records digests of both parts in the
results. The choice runs in a single process (on the GPU when there is one), not distributed.

The work dir must be new or empty unless ``--resume`` is given (as ``tools/demo.py``): then
finished candidates are kept and an unfinished one is fine-tuned again from the start, so every
row comes from one uninterrupted, identically seeded run. Resuming with another checkpoint,
detection config, schedule or seed is refused, since the rows would not be comparable.
"""
from __future__ import annotations

import copy
import gc
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any, Mapping

import torch
from mmengine.hooks import Hook

from ..det.board_choice import (candidate_record, export_inherited, find_search_checkpoint,
                                load_supernet, rank_records, ranking_markdown, read_board,
                                select_candidates)
from ..errors import CheckpointError, ConfigError
from ..search.finished import read_search
from ..utils.io import atomic_write_text
from .run import build_runner, check_data, load_config

FORMAT = 'cream_det.det_choice/1'
RESULTS = 'results.json'


# ---- the detection config per candidate -------------------------------------------------------------
def check_det_config(cfg: Any, path: 'str | os.PathLike') -> None:
    """Refuse configs the choice cannot use, before any fine-tune starts."""
    bb = (cfg.get('model') or {}).get('backbone') or {}
    if bb.get('type') != 'CreamBackbone':
        raise ConfigError(f"{path}: model.backbone.type is {bb.get('type')!r}; each board path goes into a "
                          "CreamBackbone, so pass a config with model.backbone=dict(type='CreamBackbone', ...) "
                          '(e.g. configs/retinanet/retinanet_cream-demo_fpn_digits.py)')
    for key in ('val_dataloader', 'val_evaluator', 'val_cfg'):
        if not cfg.get(key):
            raise ConfigError(f'{path}: has no {key}; bbox mAP is measured with the config\'s validation set '
                              'and evaluator')
    if cfg.get('load_from'):
        raise ConfigError(f'{path}: sets load_from={cfg.load_from!r}, which would overwrite the inherited backbone '
                          'weights; remove it (--cfg-options load_from=None)')


def candidate_config(base: Any, checkpoint: 'str | os.PathLike', work_dir: 'str | os.PathLike',
                     schedule: tuple[str, int], seed: int, name: str) -> Any:
    """``base`` with the backbone from ``checkpoint`` (arch embedded), the brief schedule and the seed.

    Validation runs once after training, by the caller, so that the metrics come back from the
    call rather than from mmengine's process-global state.
    """
    unit, n = schedule
    cfg = copy.deepcopy(base)
    bb = cfg.model.backbone
    bb.pop('arch', None)
    bb['init_cfg'] = dict(type='Pretrained', checkpoint=str(checkpoint))
    cfg.work_dir = str(work_dir)
    cfg.experiment_name = f'det_choice_{name}_{uuid.uuid4().hex[:6]}'     # unique logger/hub/visualizer names
    if cfg.get('visualizer'):
        cfg.visualizer.pop('name', None)                # then mmengine names it after the experiment
    cfg.randomness = dict(cfg.get('randomness') or {}, seed=seed)
    cfg.load_from, cfg.resume = None, False
    by_epoch = unit == 'epochs'
    if by_epoch:
        cfg.train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=n, val_interval=n, val_begin=n + 1)
    else:
        cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=n, val_interval=n, val_begin=n + 1)
        # an iteration loop never steps epoch-based schedulers; keep only those that act per iteration
        scheds = cfg.get('param_scheduler') or []
        scheds = [scheds] if isinstance(scheds, Mapping) else list(scheds)
        cfg.param_scheduler = [s for s in scheds
                               if s.get('by_epoch', True) is False or s.get('convert_to_iter_based', False)]
    hooks = cfg.get('default_hooks') or {}
    ck = dict(hooks.get('checkpoint') or dict(type='CheckpointHook'))
    ck.update(by_epoch=by_epoch, interval=n, max_keep_ckpts=1, save_best=None)
    hooks['checkpoint'] = ck
    cfg.default_hooks = hooks
    cfg.log_processor = dict(cfg.get('log_processor') or {}, by_epoch=by_epoch)
    return cfg


def state_digest(sd: Mapping[str, torch.Tensor]) -> str:
    """sha256 over (key, raw bytes) of every tensor, keys sorted: equal digests = equal weights."""
    h = hashlib.sha256()
    for k in sorted(sd):
        t = sd[k].detach().cpu().contiguous().reshape(-1)
        h.update(k.encode())
        h.update(str(t.dtype).encode())
        h.update(t.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


class CandidateStartHook(Hook):
    """Re-seeds before weight init; at the start of training checks the backbone holds ``checkpoint``.

    The seed is applied in ``before_run``, which mmengine calls just before ``init_weights``: the
    model was built (consuming a different amount of randomness per arch) after the Runner's own
    seeding, so without this the neck and head would start differently for every candidate.
    """

    priority = 'VERY_HIGH'

    def __init__(self, checkpoint: 'str | os.PathLike', seed: int) -> None:
        self.checkpoint, self.seed = str(checkpoint), seed
        self.digests: dict[str, str] = {}

    def before_run(self, runner: Any) -> None:
        from mmengine.runner import set_random_seed
        set_random_seed(self.seed)

    def before_train(self, runner: Any) -> None:
        from ..models.checkpoint import extract_state_dict, read_checkpoint
        model = runner.model.module if hasattr(runner.model, 'module') else runner.model
        own = model.backbone.net.state_dict()
        want = extract_state_dict(read_checkpoint(self.checkpoint), source=self.checkpoint)
        bad = [k for k in own if k not in want or not torch.equal(own[k].cpu(), want[k])]
        if bad:
            raise CheckpointError(f'when training starts the detector\'s backbone does not hold the inherited '
                                  f'weights of {self.checkpoint} ({len(bad)} tensor(s) differ, first: {bad[0]}); '
                                  'does the detection config set load_from or a model-level init_cfg?')
        rest = {k: v for k, v in model.state_dict().items() if not k.startswith('backbone.')}
        self.digests = {'backbone': state_digest(own), 'neck_head': state_digest(rest)}


def bbox_metrics(metrics: Mapping[str, float], config: str) -> dict[str, float]:
    """bbox mAP and mAP50 from an evaluator's result (mmdet's CocoMetric: ``coco/bbox_mAP``, ``..._50``)."""
    if not metrics:         # mmdet's CocoMetric returns nothing when the model detects nothing
        return {'bbox_mAP': 0.0, 'mAP50': 0.0}
    m = next((v for k, v in metrics.items() if k.endswith('bbox_mAP')), None)
    m50 = next((v for k, v in metrics.items() if k.endswith('bbox_mAP_50')), None)
    if m is None:
        raise ConfigError(f'{config}: the val_evaluator reports {sorted(metrics)} but no bbox_mAP; use '
                          "dict(type='CocoMetric', metric='bbox', ...)")
    return {'bbox_mAP': float(m), 'mAP50': float(m50 if m50 is not None else 0.0)}


def fine_tune(cfg: Any, checkpoint: Path, seed: int) -> tuple[dict[str, float], dict[str, str]]:
    """Train one candidate's detector, validate once; returns (the evaluator's metrics, init digests)."""
    runner = build_runner(cfg)
    hook = CandidateStartHook(checkpoint, seed)
    runner.register_hook(hook)
    try:
        runner.train()
        metrics = dict(runner.val_loop.run() or {})
    finally:
        for h in list(runner.logger.handlers):          # the candidate's log file is complete
            if isinstance(h, logging.FileHandler):
                h.close()
                runner.logger.removeHandler(h)
        del runner
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return {k: float(v) for k, v in metrics.items()}, hook.digests


# ---- the driver ---------------------------------------------------------------------------------------
def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()


def _check_work_dir(work: Path, resume: bool) -> None:
    """As ``tools/demo.py``: a new or empty dir, or with ``--resume`` an existing one."""
    if resume:
        if not work.is_dir():
            raise ConfigError(f'--resume: {work} does not exist; pass the --work-dir of the choice to continue')
    elif work.exists() and any(work.iterdir()):
        raise ConfigError(f'{work} is not empty: pass --resume to continue that choice, or choose a new --work-dir')


def _load_results(work: Path, inputs: dict[str, Any]) -> dict[str, Any]:
    path = work / RESULTS
    if not path.is_file():
        return {'format': FORMAT, 'inputs': inputs, 'candidates': {}}
    try:
        state = json.loads(path.read_text(encoding='utf-8'))
        old = state['inputs']
        state['candidates']
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ConfigError(f'{path}: unreadable ({type(e).__name__}: {e}); delete it to start the choice '
                          'afresh') from None
    changed = [k for k in inputs if old.get(k) != inputs[k]]
    if changed:
        raise ConfigError(f'{path} was made with other {", ".join(changed)} than this run '
                          f'({"; ".join(f"{k}: {old.get(k)} -> {inputs[k]}" for k in changed)}); its rows would not '
                          'be comparable: rerun with the same arguments or use a new --work-dir')
    return state


def _logger(work: Path) -> Any:
    from mmengine.logging import MMLogger
    return MMLogger.get_instance(f'det_choice_{uuid.uuid4().hex[:8]}', logger_name='det_choice',
                                 log_file=str(work / 'choose_det_arch.log'), file_mode='a')


def choose_det_arch(search_dir: 'str | os.PathLike', det_config: 'str | os.PathLike', work_dir: 'str | os.PathLike',
                    *, checkpoint: 'str | os.PathLike | None' = None, top: int | None = None,
                    schedule: tuple[str, int] = ('epochs', 1), seed: int | None = None, resume: bool = False,
                    cfg_options: Mapping[str, Any] | None = None, ignore_macs_range: bool = False) -> dict[str, Any]:
    """Fine-tune RetinaNet for each selected board path and rank them; returns the ranking dict.

    ``schedule`` is ``('epochs', n)`` or ``('iters', n)``. See the module docstring for the files.
    """
    unit, n = schedule
    if unit not in ('epochs', 'iters') or int(n) < 1:
        raise ConfigError(f'fine-tune length {n} {unit}: give a positive number of epochs or iters')
    search_dir, work = Path(search_dir), Path(work_dir).absolute()
    # every input is checked before anything is written
    cfg = load_config(det_config, cfg_options)
    check_det_config(cfg, det_config)
    if 'model.backbone.norm_eval' not in (cfg_options or {}):
        # a path's BN statistics in the supernet are a mixture over every path that shared the
        # layer: let them adapt to this path during the fine-tune instead of freezing them
        cfg.model.backbone.norm_eval = False
    board_file = search_dir / 'board.json'
    board = read_board(board_file)
    search = read_search(search_dir, checkpoint)
    ckpt = find_search_checkpoint(search_dir, checkpoint)
    macs_range = None if ignore_macs_range else search.macs_range
    latency_range = None if ignore_macs_range else search.latency_range
    selected, skipped = select_candidates(board, macs_range, top, latency_range)
    check_data(cfg)
    seed = int(seed if seed is not None else (cfg.get('randomness') or {}).get('seed') or 0)
    _check_work_dir(work, resume)
    inputs = {'checkpoint_sha256': _file_sha256(ckpt),
              'det_config_sha256': hashlib.sha256(json.dumps(cfg.to_dict(), sort_keys=True, default=str)
                                                  .encode()).hexdigest(),
              'schedule': {unit: int(n)}, 'seed': seed}
    state = _load_results(work, inputs)
    done = state['candidates']
    todo = [c for c in selected if c.arch.hash not in done]
    # a board that does not fit the checkpoint fails here, still before anything is written
    # the recorded depths belong to the search's own checkpoint; another one given is read by its keys
    depths = search.depths if checkpoint is None else None
    supernet = load_supernet(ckpt, board, str(board_file), depths) if todo else None

    work.mkdir(parents=True, exist_ok=True)
    log = _logger(work)
    log.info(f'detection-aware choice: {len(selected)} board path(s) of {board_file} '
             f'(checkpoint {ckpt}), {len(selected) - len(todo)} already finished, {n} {unit} each, seed {seed}')
    for s in skipped:
        log.info(f'  skipped board rank {s["board_rank"]} ({s["hash"]}): {s["reason"]}')
    cand_root = work / 'candidates'
    if supernet is not None:            # export first, so the (large) supernet is freed before training
        for c in todo:
            d = cand_root / c.name
            if d.exists():              # an unfinished earlier attempt (only under --resume): start it over
                shutil.rmtree(d)
            export_inherited(supernet, c, d / 'inherited.pth', str(ckpt))
        del supernet
        gc.collect()

    for i, c in enumerate(todo, 1):
        d = cand_root / c.name
        log.info(f'[{i}/{len(todo)}] board rank {c.board_rank}: {c.arch} ({c.macs / 1e6:.1f}M MACs, '
                 f'board acc {c.acc:.2f}%) -> {d}')
        t0 = time.time()
        ccfg = candidate_config(cfg, d / 'inherited.pth', d, (unit, int(n)), seed, c.name)
        metrics, digests = fine_tune(ccfg, d / 'inherited.pth', seed)
        m = bbox_metrics(metrics, str(det_config))
        done[c.arch.hash] = candidate_record(
            c, m, metrics=metrics, init_digests=digests, work_dir=str(d.relative_to(work)),
            backbone_checkpoint=str((d / 'inherited.pth').relative_to(work)), seconds=round(time.time() - t0, 1),
            finished=time.strftime('%Y-%m-%d %H:%M:%S'))
        atomic_write_text(work / RESULTS, json.dumps(state, indent=2) + '\n')
        log.info(f'[{i}/{len(todo)}] board rank {c.board_rank}: bbox mAP {m["bbox_mAP"]:.4f}, '
                 f'mAP50 {m["mAP50"]:.4f} ({time.time() - t0:.0f} s)')
    atomic_write_text(work / RESULTS, json.dumps(state, indent=2) + '\n')

    rows = rank_records(done[c.arch.hash] for c in selected)
    ranking = {'format': FORMAT, 'search_dir': str(search_dir.absolute()), 'board': str(board_file.absolute()),
               'checkpoint': str(ckpt.absolute()), 'det_config': str(Path(det_config).absolute()),
               'macs_range': list(macs_range) if macs_range else None, **inputs, 'rows': rows, 'skipped': skipped}
    atomic_write_text(work / 'ranking.json', json.dumps(ranking, indent=2) + '\n')
    title = (f'Detection-aware choice: {len(rows)} board path(s) of `{board_file}`, RetinaNet fine-tuned '
             f'{n} {unit} from inherited weights (`{Path(det_config).name}`), seed {seed}')
    atomic_write_text(work / 'ranking.md', ranking_markdown(rows, title))
    from ..space import Arch
    winner = Arch.from_dict(rows[0]['arch'])
    winner.save(work / 'arch.json')
    log.info('\n' + ranking_markdown(rows))
    log.info(f'winner: board rank {rows[0]["board_rank"]}, {winner} (bbox mAP {rows[0]["bbox_mAP"]:.4f}) -> '
             f'{work / "arch.json"}; table in {work / "ranking.md"}')
    return ranking


__all__ = ['choose_det_arch', 'candidate_config', 'check_det_config', 'CandidateStartHook', 'bbox_metrics',
           'fine_tune', 'state_digest']
