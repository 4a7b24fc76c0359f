"""``tools/search.py``: train the supernet with the Runner, then pick and export the architecture."""
from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import torch

from ..errors import TrainingError
from ..utils import distributed as D
from ..search.evaluate import path_scorer, take_batches
from ..search.evolution import evolution_search
from ..utils.io import atomic_torch_save
from .faults import stop_cleanly
from .run import build_runner
from .search_latency import measure_pick, prepare_latency_table
from ..search.finished import write_summary
from .supernet_search import SupernetSearch, plot_board, search_model, unpack_batch


def run_search(cfg: Any, resume: 'bool | str' = False, amp: bool = False) -> tuple[Any, dict[str, Any]]:
    """Train the supernet, pick the arch, write arch.json and search_summary.json; returns (runner, summary).

    The final pick is made here and only here (the board's best path, the evolution's or NSGA-II's
    pick, or the strategy's own final search), and this is the one writer of ``arch.json``.
    """
    t0 = time.time()
    hooks = list(cfg.get('custom_hooks') or [])
    for needed in ('SearchStateHook', 'SearchOutputsHook'):       # resume and outputs depend on them
        if not any(h.get('type') == needed for h in hooks):
            hooks.append(dict(type=needed))
    cfg.custom_hooks = hooks
    # model.latency_table=dict(measure=True): measured into the work dir; the pick is then timed here too
    pick_timing = prepare_latency_table(cfg)
    runner = build_runner(cfg, resume=resume, amp=amp)
    with stop_cleanly(runner):         # a stalled rank, a full disk: one error naming the last checkpoint
        return runner, _train_and_pick(runner, cfg, resume, t0, pick_timing)


def _train_and_pick(runner: Any, cfg: Any, resume: 'bool | str', t0: float,
                    pick_timing: dict[str, int] | None = None) -> dict[str, Any]:
    runner.train()
    model = search_model(runner.model)
    work = Path(runner.work_dir)
    cands = model.strategy.ranked_candidates()
    own = model.strategy.final_pick        # a strategy's own final search (DNA's), its default when it has one
    pick = cfg.get('final_pick') or ('board' if cands else own or 'evolution')
    summary: dict[str, Any] = {}
    arch = None
    if pick in ('evolution', 'pareto'):
        wait = D.patient_group()        # the others wait for rank 0's search, longer than the collective timeout
        if D.rank() == 0:
            arch, summary[pick] = (_evolve if pick == 'evolution' else _pareto)(runner, cfg, model, work, resume)
        D.barrier(wait)
    elif own is not None and pick == own:      # every rank, on its share of the held-out data
        arch, summary[pick] = _strategy_final_search(runner, cfg, model, work, pick)
    elif not cands:
        raise no_board_pick_error(model.strategy, model.macs_range)
    else:
        arch = model.supernet.arch_of(cands[0])
        runner.logger.info(f'final arch (best board path): {arch}, {arch.macs / 1e6:.1f}M MACs')
    if D.rank() == 0:               # the one writer of arch.json
        table = model.latency_table
        latency = None if table is None else table.arch_record(arch)
        if latency is not None and pick_timing is not None:       # a table of this machine: time the pick here
            try:
                latency.update(measure_pick(table, arch, pick_timing))
            except TrainingError as e:      # the search's result outlives a failed check of it: said, not lost
                runner.logger.warning(f'{e}\narch.json is written with its predicted latency only')
        arch.save(work / 'arch.json', latency=latency)
        summary.update(strategy=type(model.strategy).__name__, final_pick=pick, arch=arch.to_dict(latency),
                       supernet_depths=list(model.supernet.depths), macs_range=list(model.macs_range),
                       iterations=runner.iter, seconds=round(time.time() - t0, 1))
        if model.latency_range is not None:         # the range asked for; with a margin, also the one searched
            summary['latency_range'] = list(model.latency_asked)
            if model.latency_margin:
                summary.update(latency_margin=model.latency_margin, latency_searched=list(model.latency_range))
        if hasattr(model.strategy, 'board'):
            summary['board'] = [{'acc': e.acc, 'macs': e.macs, 'step': e.step,
                                 **({} if e.latency is None else {'latency_ms': e.latency})}
                                for e in model.strategy.board]
        write_summary(work, summary)
        ms = '' if latency is None else f', {latency["predicted_ms"]:.2f} ms predicted'
        if latency is not None and 'measured_ms' in latency:
            ms += f', {latency["measured_ms"]:.2f} ms measured here ({latency["measured"]}' + (
                f'; {latency["measured_plain_ms"]:.2f} ms plain)' if 'measured_plain_ms' in latency else ')')
        runner.logger.info(f'search done: {arch} ({arch.macs / 1e6:.1f}M MACs{ms}, {arch.params / 1e6:.2f}M params) '
                           f'-> {work / "arch.json"}')
        lat = model.latency_asked
        if lat is not None and latency is not None and 'measured_ms' in latency \
                and not lat[0] <= latency['measured_ms'] <= lat[1]:
            runner.logger.warning(f'the pick measured {latency["measured_ms"]:.2f} ms here, outside the latency range '
                                  f'{lat[0]:.2f}-{lat[1]:.2f} ms it was predicted inside: a measurement is only as '
                                  'steady as the machine (docs/latency.md)')
    return summary


def no_board_pick_error(strategy: Any, macs_range: tuple[float, float]) -> Exception:
    """Why ``final_pick='board'`` has nothing to pick: no board, an empty board, or no board path in range."""
    from ..errors import ConfigError
    board = getattr(strategy, 'board', None)
    if board is None:
        return ConfigError(f"final_pick='board' but the {type(strategy).__name__} strategy has no board; "
                           "use final_pick='evolution'")
    if not len(board):
        return ConfigError("final_pick='board' but the board is empty: no path was trained after the warm-up; "
                           "train longer than the warm-up, or use final_pick='evolution'")
    lo, hi = macs_range
    lat = getattr(strategy, 'latency_range', None)
    also = '' if lat is None else (f" (predicted {', '.join(f'{e.latency:.2f}' for e in board)} ms) and the latency "
                                   f'range {lat[0]:.2f}-{lat[1]:.2f} ms')
    return ConfigError(f"final_pick='board' but none of the board's {len(board)} paths "
                       f"({', '.join(f'{e.macs / 1e6:.1f}M' for e in board)} MACs) is inside the MACs range "
                       f'{lo / 1e6:.1f}-{hi / 1e6:.1f}M{also}: paths train unconstrained unless '
                       "model.strategy.constrain_macs=True; use that, or final_pick='evolution'")


def _local_loader(runner: Any, loader_cfg: Any) -> Any:
    """The held-out loader of this process alone: the whole set, in order.

    The evolution runs on rank 0 only; a ``DefaultSampler`` would shard the set across ranks and
    agree on a seed through a collective call that rank 0 alone cannot complete (the other ranks
    wait at a barrier: the run would hang).
    """
    from mmengine.registry import DATASETS
    from torch.utils.data import SequentialSampler
    cfg = copy.deepcopy(loader_cfg)
    dataset = cfg['dataset']
    if isinstance(dataset, dict):
        dataset = DATASETS.build(dataset)
        if hasattr(dataset, 'full_init'):
            dataset.full_init()
    cfg['dataset'] = dataset
    cfg['sampler'] = SequentialSampler(dataset)
    return runner.build_dataloader(cfg)


def _held_out(runner: Any, cfg: Any, model: SupernetSearch, ev: dict, pick: str) -> tuple[list, list]:
    """Calibration batches (training images) and held-out batches for rank 0's inherited top-1."""
    calib_n, val_n = ev.pop('calib_batches', 8), ev.pop('val_batches', None)
    loader_cfg = cfg.get('search_val_dataloader')
    if loader_cfg is None:
        from ..errors import ConfigError
        raise ConfigError(f"final_pick='{pick}' needs search_val_dataloader in the config (held-out images)")
    device = next(model.parameters()).device

    def unpack(data: Any) -> tuple[torch.Tensor, torch.Tensor]:
        return unpack_batch(model.data_preprocessor(data, False))

    # the shuffle of the calibration images must not depend on whether this process trained or
    # resumed a finished run (the sampler's epoch is only set by training epochs)
    sampler = getattr(runner.train_dataloader, 'sampler', None)
    if hasattr(sampler, 'set_epoch'):
        sampler.set_epoch(runner.epoch)
    calib = take_batches(runner.train_dataloader, calib_n, unpack, device)
    val = take_batches(_local_loader(runner, loader_cfg), val_n, unpack, device)
    return calib, val


def _pareto(runner: Any, cfg: Any, model: SupernetSearch, work: Path, resume: Any) -> tuple[Any, dict[str, Any]]:
    """NSGA-II over (inherited top-1, MACs) on rank 0: pareto.json, pareto.png; resumable. Returns (pick, summary)."""
    from ..search.nsga2 import nsga2_search, write_pareto
    ev = dict(cfg.get('pareto') or {})
    known = {'population', 'generations', 'mutation_prob', 'crossover_prob', 'pareto_range', 'calib_batches',
             'val_batches'}
    if set(ev) - known:
        from ..errors import ConfigError
        raise ConfigError(f'pareto: unknown option(s) {sorted(set(ev) - known)}; known: {sorted(known)}')
    calib, val = _held_out(runner, cfg, model, ev, 'pareto')
    state_path = work / 'pareto_state.pth'
    init_state = torch.load(state_path, weights_only=True) if resume and state_path.is_file() else None

    def on_generation(gen: int, state: dict[str, Any]) -> None:
        atomic_torch_save(state, state_path)
        h = dict(state['history'][-1]) if state.get('history') else {}
        h.pop('front_macs', None)
        h.pop('front_ms', None)
        runner.logger.info(f'NSGA-II generation {gen + 1}: {json.dumps(h)}')

    sn = model.supernet
    res = nsga2_search(path_scorer(sn, calib, val), sn.space, sn.resolution, sn.num_classes, sn.depths,
                       model.macs_range, on_generation=on_generation, init_state=init_state,
                       seed=int(cfg.get('randomness', {}).get('seed') or 0), max_paths=sn.max_paths,
                       latency_table=model.latency_table, latency_range=model.latency_range, **ev)
    data = write_pareto(res, sn.arch_of, model.macs_range, work, latency_range=model.latency_range)
    arch = sn.arch_of(res.best_code)
    runner.logger.info(f"NSGA-II: {len(res.front_scores)} archs on the front of {len(res.scores)} evaluated; pick "
                       f"{arch} ({data['pick']['score']:.2f} top-1, {arch.macs / 1e6:.2f}M MACs"
                       f"{'' if data['pick']['on_front'] else ', best in range, off the front'}) -> pareto.json")
    return arch, {'best_top1': data['pick']['score'], 'on_front': data['pick']['on_front'],
                  'front': [[f['macs'], f['score']] for f in data['front']], 'evaluated': len(res.scores)}


def _evolve(runner: Any, cfg: Any, model: SupernetSearch, work: Path, resume: Any) -> tuple[Any, dict[str, Any]]:
    """Evolutionary search over the trained supernet (rank 0), resumable from evolution_state.pth.
    Returns (pick, summary)."""
    ev = dict(cfg.get('evolution') or {})
    calib_n, val_n = ev.pop('calib_batches', 8), ev.pop('val_batches', None)
    loader_cfg = cfg.get('search_val_dataloader')
    if loader_cfg is None:
        from ..errors import ConfigError
        raise ConfigError("final_pick='evolution' needs search_val_dataloader in the config (held-out images)")
    device = next(model.parameters()).device

    def unpack(data: Any) -> tuple[torch.Tensor, torch.Tensor]:
        return unpack_batch(model.data_preprocessor(data, False))

    calib = take_batches(runner.train_dataloader, calib_n, unpack, device)
    val = take_batches(_local_loader(runner, loader_cfg), val_n, unpack, device)
    state_path = work / 'evolution_state.pth'
    init_state = None
    if resume and state_path.is_file():
        init_state = torch.load(state_path, weights_only=True)

    def on_generation(gen: int, state: dict[str, Any]) -> None:
        atomic_torch_save(state, state_path)
        h = state['history'][-1] if state.get('history') else {}
        runner.logger.info(f'evolution generation {gen + 1}: {json.dumps(h)}')

    sn = model.supernet
    res = evolution_search(path_scorer(sn, calib, val), sn.space, sn.resolution, sn.num_classes, sn.depths,
                           model.macs_range, on_generation=on_generation, init_state=init_state,
                           seed=int(cfg.get('randomness', {}).get('seed') or 0), max_paths=sn.max_paths,
                           latency_table=model.latency_table, latency_range=model.latency_range, **ev)
    arch = sn.arch_of(res.best_code)
    plot_board(model, work / 'board.png')
    return arch, {'best_top1': res.best_score, 'evaluated': res.num_evaluated}


def _strategy_final_search(runner: Any, cfg: Any, model: SupernetSearch, work: Path,
                           pick: str) -> tuple[Any, dict[str, Any]]:
    """The strategy's own final pick on the held-out images: (pick, summary).

    Runs on every rank: the loader is built on all of them (mmengine's sampler synchronises its
    seed) and shards the held-out set; the strategy reduces its measurements across ranks.
    """
    loader_cfg = cfg.get('search_val_dataloader')
    if loader_cfg is None:
        from ..errors import ConfigError
        raise ConfigError(f"final_pick='{pick}' needs search_val_dataloader in the config (held-out images)")
    loader_cfg = copy.deepcopy(loader_cfg)
    if (loader_cfg.get('sampler') or {}).get('type') == 'DefaultSampler':
        loader_cfg['sampler'].setdefault('round_up', False)     # no image scored twice to even out the shards
    device = next(model.parameters()).device
    loader = runner.build_dataloader(loader_cfg)

    def batches() -> Any:
        for data in loader:
            x, y = unpack_batch(model.data_preprocessor(data, False))
            yield x.to(device), y.to(device)

    return model.strategy.final_search(model.supernet, batches(), work, runner.logger.info)
