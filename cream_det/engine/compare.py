"""Comparing search strategies by how well their supernets rank architectures (Kendall tau).

The measure the paper and its peers judge a weight-sharing method by: for one set of archs, the
ranking a trained supernet gives (inherited accuracy, or DNA's block losses) against the ranking of
the same archs trained stand-alone. Comparing strategies is only fair on the same archs, data and
budget, so the archs are single-path ones (every strategy's space holds them, MixPath's with one
op per layer), drawn once, trained stand-alone once, and scored by every supernet.

A MixPath supernet is trained for multi-path archs, and single paths are only the narrowest of
them, so when a MixPath search is among the runs a second set of archs is drawn with its sampler
(k ~ U{1..m} ops per layer, inside its range), trained stand-alone too, and scored by the MixPath
supernets alone (no other supernet can run them): a second Kendall tau for MixPath.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..errors import CheckpointError, ConfigError
from ..search.finished import read_search
from ..search.evaluate import Batch, path_scorer, take_batches
from ..search.ranking import kendall_tau
from ..search.ranking_tool import dna_path_scores, standalone_top1
from ..space import Arch, ArchSampler
from ..utils.io import atomic_write_bytes, atomic_write_text, png_bytes
from .run import load_config
from .supernet_search import load_search_checkpoint, unpack_batch


@dataclass
class SearchRun:
    """A finished search: its config, and its model with the last checkpoint's weights and state."""

    work_dir: Path
    cfg: Any
    model: Any

    @property
    def strategy(self) -> str:
        return type(self.model.strategy).__name__


def load_search(work_dir: 'str | Path') -> SearchRun:
    """The search in ``work_dir`` (the config mmengine dumped there and its latest checkpoint)."""
    from mmengine.registry import MODELS
    wd = Path(work_dir)
    if not wd.is_dir():
        raise ConfigError(f'{wd}: no such search work dir')
    search = read_search(wd)
    if search.checkpoint is None:
        raise CheckpointError(f'{wd}: no last_checkpoint, so not a finished search work dir (run tools/search.py)')
    cfg = load_config(search.config(), work_dir=str(wd))
    model = MODELS.build(cfg.model)
    load_search_checkpoint(model, search.checkpoint)
    return SearchRun(wd, cfg, model.eval())


def path_scores(run: SearchRun, archs: Sequence[Arch], calib: Sequence[Batch], val: Sequence[Batch]) -> np.ndarray:
    """Each arch's score under ``run``'s supernet, higher is better.

    Inherited top-1 with BN recalibrated on ``calib`` (SPOS's recipe, used for Cream, SPOS and
    MixPath alike); for DNA minus the summed block rating (its ``rating``: the authors' relative L1
    by default), its own ranking signal.
    """
    from ..search.dna import DNA
    if isinstance(run.model.strategy, DNA):
        codes = np.stack([a.encode() for a in archs])
        return -np.asarray(dna_path_scores(run.model, codes, val), dtype=np.float64)
    return path_scorer(run.model.supernet, calib, val)(list(archs))


def _check_comparable(runs: Sequence[SearchRun]) -> None:
    ref = runs[0]
    ref_sn, ref_root = ref.model.supernet, _data_root(ref.cfg)
    for r in runs[1:]:
        sn = r.model.supernet
        mine = (sn.space.name, sn.resolution, sn.num_classes, tuple(sn.depths))
        theirs = (ref_sn.space.name, ref_sn.resolution, ref_sn.num_classes, tuple(ref_sn.depths))
        if mine != theirs:
            raise ConfigError(f'{r.work_dir} searched (space, resolution, classes, depths) {mine} but {ref.work_dir} '
                              f'{theirs}: compare searches of the same supernet')
        if _data_root(r.cfg) != ref_root:
            raise ConfigError(f'{r.work_dir} trained on {_data_root(r.cfg)} but {ref.work_dir} on {ref_root}: '
                              'compare searches on the same data')


def _data_root(cfg: Any) -> str:
    ds = cfg.train_dataloader.dataset
    return str(Path(ds.get('root') or ds.get('data_root') or '').resolve())


def compare_searches(runs: Sequence[SearchRun], num_archs: int = 8, epochs: int = 3, train_batches: int | None = None,
                     calib_batches: int = 4, seed: int = 0, amp: bool = False) -> dict[str, Any]:
    """Kendall tau of every run's scores against stand-alone top-1 of the same archs."""
    from mmengine.runner import Runner
    if not runs:
        raise ConfigError('give at least one search work dir')
    _check_comparable(runs)
    ref = runs[0]
    sn = ref.model.supernet
    if ref.cfg.get('search_val_dataloader') is None:
        raise ConfigError(f'{ref.work_dir}: its config has no search_val_dataloader (held-out images)')

    device = 'cuda' if torch.cuda.is_available() else 'cpu'     # every supernet and stand-alone net on it
    for r in runs:
        r.model.to(device)

    def unpack(data: Any) -> Batch:
        return unpack_batch(ref.model.data_preprocessor(data, False))
    train = take_batches(Runner.build_dataloader(ref.cfg.train_dataloader, seed=seed), train_batches, unpack, device)
    val = take_batches(Runner.build_dataloader(ref.cfg.search_val_dataloader, seed=seed), None, unpack, device)
    sampler = ArchSampler(sn.space, sn.resolution, sn.num_classes, depths=sn.depths, macs_range=ref.model.macs_range,
                          seed=seed, latency_table=ref.model.latency_table, latency_range=ref.model.latency_range)
    archs = [Arch.decode(c, sn.space, sn.resolution, sn.num_classes) for c in sampler.sample_codes(num_archs)]
    print(f'training {len(archs)} archs stand-alone for {epochs} epochs each ...', flush=True)
    standalone = standalone_top1(archs, train, val, epochs, seed=seed, amp=amp)
    # how far the ground truth itself moves: the first arch again, with another seed
    noise = abs(standalone_top1(archs[:1], train, val, epochs, seed=seed + 1, amp=amp)[0] - standalone[0])
    multi = [r for r in runs if getattr(r.model.supernet, 'max_paths', None)]
    multipath = None
    if multi:                              # MixPath's own archs: k ~ U{1..m} ops per layer, in its range
        m = min(r.model.supernet.max_paths for r in multi)
        ms = ArchSampler(sn.space, sn.resolution, sn.num_classes, depths=sn.depths,
                         macs_range=multi[0].model.macs_range, seed=seed, max_paths=m)
        marchs = [Arch.decode_mask(c, sn.space, sn.resolution, sn.num_classes) for c in ms.sample_codes(num_archs)]
        print(f'training {len(marchs)} multi-path archs (up to {m} ops per layer) stand-alone ...', flush=True)
        m_top1 = standalone_top1(marchs, train, val, epochs, seed=seed, amp=amp)
        multipath = {'max_paths': m, 'macs_range': list(multi[0].model.macs_range),
                     'archs': [a.to_dict() for a in marchs], 'macs': [a.macs for a in marchs],
                     'standalone_top1': m_top1.tolist()}
    out_runs = []
    for r in runs:
        scores = path_scores(r, archs, train[:calib_batches], val)
        rating = getattr(r.model.strategy, 'rating', 'mse')
        out_runs.append({'strategy': r.strategy, 'work_dir': str(r.work_dir), 'scores': scores.tolist(),
                         'score': f'minus summed block {rating}' if r.strategy == 'DNA' else 'inherited top-1',
                         'kendall_tau': kendall_tau(scores, standalone)})
        if multipath is not None and any(r is q for q in multi):
            mscores = path_scores(r, marchs, train[:calib_batches], val)
            out_runs[-1]['multipath'] = {'scores': mscores.tolist(),
                                         'kendall_tau': kendall_tau(mscores, multipath['standalone_top1'])}
        print(f'{r.strategy:8s} kendall tau {out_runs[-1]["kendall_tau"]:+.3f}'
              + (f', on multi-path archs {out_runs[-1]["multipath"]["kendall_tau"]:+.3f}'
                 if 'multipath' in out_runs[-1] else ''), flush=True)
    return {'num_archs': len(archs), 'epochs': epochs, 'seed': seed, 'macs_range': list(ref.model.macs_range),
            'archs': [a.to_dict() for a in archs], 'macs': [a.macs for a in archs],
            'standalone_top1': standalone.tolist(), 'standalone_seed_noise': float(noise), 'runs': out_runs,
            'multipath': multipath}


def write_comparison(res: dict[str, Any], out_dir: Path) -> str:
    """``comparison.json``, ``comparison.md`` (returned) and ``comparison.png`` in ``out_dir``, atomically."""
    out_dir = Path(out_dir)
    lines = ['| strategy | supernet score | Kendall tau vs stand-alone top-1 | on multi-path archs |',
             '|---|---|---|---|']
    lines += [f'| {r["strategy"]} | {r["score"]} | {r["kendall_tau"]:+.3f} | '
              + (f'{r["multipath"]["kendall_tau"]:+.3f} |' if 'multipath' in r else '– |') for r in res['runs']]
    table = '\n'.join(lines) + (f'\n\n{res["num_archs"]} archs in {res["macs_range"][0] / 1e6:.1f}-'
                                f'{res["macs_range"][1] / 1e6:.1f} M MACs, stand-alone {res["epochs"]} epochs; '
                                f'stand-alone top-1 {min(res["standalone_top1"]):.1f}-{max(res["standalone_top1"]):.1f} % '
                                f'(one arch retrained with another seed moves by {res["standalone_seed_noise"]:.1f} '
                                'points)\n')
    mp = res.get('multipath')
    if mp:
        table += (f'\nMulti-path archs (MixPath only): {len(mp["archs"])} with up to {mp["max_paths"]} ops per '
                  f'layer in {mp["macs_range"][0] / 1e6:.1f}-{mp["macs_range"][1] / 1e6:.1f} M MACs, stand-alone top-1 '
                  f'{min(mp["standalone_top1"]):.1f}-{max(mp["standalone_top1"]):.1f} %\n')
    atomic_write_text(out_dir / 'comparison.json', json.dumps(res, indent=2) + '\n')
    atomic_write_text(out_dir / 'comparison.md', table)
    atomic_write_bytes(out_dir / 'comparison.png', _plot(res))
    return table


def _plot(res: dict[str, Any]) -> bytes:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    n = len(res['runs'])
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.2), dpi=110, squeeze=False)
    for ax, r in zip(axes[0], res['runs']):
        ax.scatter(res['standalone_top1'], r['scores'], s=18, color='tab:blue')
        ax.set_title(f'{r["strategy"]}: tau {r["kendall_tau"]:+.2f}', fontsize=9)
        ax.set_xlabel('stand-alone top-1 (%)', fontsize=8)
        ax.set_ylabel(r['score'], fontsize=8)
    fig.tight_layout()
    return png_bytes(fig)


__all__ = ['SearchRun', 'compare_searches', 'load_search', 'path_scores', 'write_comparison']
