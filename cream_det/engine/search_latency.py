"""A search's latency table: loaded from ``model.latency_table``, or measured at run time into the work dir.

``model.latency_table`` is a table file (``tools/latency_table.py``), or
``dict(measure=True, warmup=2, repeats=5, threads=1, calibrate=0, anchor=False)``: the table is then
measured on this machine when the search starts, written to ``<work_dir>/latency_table.json`` and reused
from there on resume (:func:`prepare_latency_table`, called by ``tools/search.py`` before the model is
built, which replaces the dict by that path). ``calibrate=N`` times N archs whole and scales the table by the
median ratio of their measured to summed ms (a global correction with no offset: a quick measurement
on a busy machine is noisy, and a least-squares line through a few noisy points can have an offset
that makes fast archs negative; one positive scale keeps every prediction positive and the ranking
unchanged). ``tools/latency_table.py --calibrate`` fits scale and offset on a quiet machine. ``anchor=True``
times every module, and the calibration archs, against one anchor module (``latency_measure``'s docstring):
on a machine whose speed drifts, the table and its calibration are then priced at one speed. Measuring
belongs to one process: a multi-process search needs a
table measured beforehand (every rank must price paths alike, or the ranks' boards would differ).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..errors import ConfigError, TrainingError
from ..models.latency import LatencyTable
from ..space import SearchSpace

#: where a table measured at run time goes, in the work dir
TABLE_FILE = 'latency_table.json'
_MEASURE_KEYS = {'measure', 'warmup', 'repeats', 'threads', 'calibrate', 'anchor'}


def load_search_table(spec: Any, space: SearchSpace, resolution: int, num_classes: int) -> LatencyTable | None:
    """The table a search prices paths with (``None`` for none), refused (LatencyTableError) when missing,
    malformed or measured for another space, or (a classifier table) another resolution or class count. A
    backbone table (``--mode backbone --input-size H W``) prices each path's backbone at the detector's input
    size, whatever resolution the supernet trains at: the search then targets the latency where the
    backbone will run."""
    if spec is None:
        return None
    if isinstance(spec, dict):
        raise ConfigError('model.latency_table=dict(measure=...) is measured by tools/search.py before the model is '
                          'built (cream_det.engine.search_latency.prepare_latency_table); elsewhere give a table file '
                          'measured with tools/latency_table.py')
    if not isinstance(spec, (str, os.PathLike)):
        raise ConfigError(f'model.latency_table={spec!r}: a table file (tools/latency_table.py) or dict(measure=True)')
    return LatencyTable.load(spec).check_search(space, resolution, num_classes, source=f'latency table {spec}')


def prepare_latency_table(cfg: Any) -> dict[str, int] | None:
    """Measure ``model.latency_table=dict(measure=True, ...)`` into the work dir (or reuse the one there)
    and put its path in the config; any other value is left for :func:`load_search_table`.

    Returns the timing (warmup, repeats) of a table measured here, with which the search's pick is then
    timed whole on this machine (:func:`measure_pick`); None for a table file, which may be of another
    device."""
    model = cfg.get('model') or {}
    spec = model.get('latency_table')
    if not isinstance(spec, dict):
        return None
    unknown = set(spec) - _MEASURE_KEYS
    if unknown or not spec.get('measure'):
        raise ConfigError(f'model.latency_table: a table file, or dict(measure=True) with any of '
                          f'{sorted(_MEASURE_KEYS - {"measure"})}; got {dict(spec)}')
    path = Path(cfg.work_dir) / TABLE_FILE
    if not path.is_file():
        if int(os.environ.get('WORLD_SIZE', '1')) > 1:
            raise ConfigError('model.latency_table=dict(measure=True) in a multi-process search: every rank must '
                              'price paths with one table; measure it first (python tools/latency_table.py --out '
                              'FILE) and set model.latency_table=FILE')
        _measure(model, spec, path)
    model['latency_table'] = str(path)
    return _spec_timing(spec)


def _spec_timing(spec: dict) -> dict[str, int]:
    """The warm-up and repeats a run-time table spec times its modules, calibration archs and pick with."""
    return dict(warmup=int(spec.get('warmup', 2)), repeats=int(spec.get('repeats', 5)))


def measure_pick(table: LatencyTable, arch: Any, timing: dict[str, int]) -> dict[str, Any]:
    """What the arch file adds to the table's prediction for a pick timed whole here, with the table's own
    settings (anchored when the table is): ``measured_ms`` and how it was timed. A prediction is a sum of
    parts; this is the whole net. An anchored table's ms are at the speed the anchor ran at while the table
    was measured, which on a machine whose speed drifts need not be the speed a plain timer meets later
    (docs/latency.md): the pick's plain time, ``measured_plain_ms``, is recorded beside it.

    Timed in a fresh process (``python -m cream_det.engine.search_latency``), as a user times a net: the
    search's own process, after training, ran the demo picks 1.09-1.24x slower than a fresh one timed
    alternately with it (idle; docs/latency.md), which would judge the pick by the search's leftovers,
    not by the net."""
    with tempfile.TemporaryDirectory(prefix='cream_pick_') as tmp:
        job = Path(tmp) / 'pick.json'
        table.save(Path(tmp) / TABLE_FILE)
        arch_dict = dict(arch.to_dict(), space_spec=arch.space.to_dict())     # the child may not know the space
        job.write_text(json.dumps({'table': str(Path(tmp) / TABLE_FILE), 'arch': arch_dict, 'timing': timing}))
        root = str(Path(__file__).resolve().parents[2])        # cream_det importable, installed or not
        env = dict(os.environ, OMP_NUM_THREADS=str(table.threads), MKL_NUM_THREADS=str(table.threads),
                   PYTHONPATH=os.pathsep.join(p for p in (root, os.environ.get('PYTHONPATH')) if p))
        done = subprocess.run([sys.executable, '-m', __name__, str(job)], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        tail = '\n'.join(done.stderr.strip().splitlines()[-5:])
        raise TrainingError(f'timing the pick in a fresh process failed (exit {done.returncode}):\n{tail}')
    return json.loads(done.stdout.strip().splitlines()[-1])


def time_pick_here(table: LatencyTable, arch: Any, timing: dict[str, int]) -> dict[str, Any]:
    """:func:`measure_pick`'s record, timed in this process (what the fresh process runs)."""
    from ..models.latency_measure import measure_arch, table_timing
    settings = table_timing(table, **timing)
    out = {'measured_ms': measure_arch(arch, **settings),
           'measured': 'anchored' if table.anchor_ms is not None else 'plain',
           'measured_repeats': int(timing['repeats'])}
    if table.anchor_ms is not None:
        out['measured_plain_ms'] = measure_arch(arch, **dict(settings, anchor_ms=None))
    return out


def _main(job_file: str) -> None:
    from ..space import Arch
    job = json.loads(Path(job_file).read_text())
    arch = Arch.from_dict(job['arch'])
    table = LatencyTable.load(job['table'], space=arch.space)
    print(json.dumps(time_pick_here(table, arch, job['timing'])), flush=True)


def _measure(model: Any, spec: dict, path: Path) -> None:
    import numpy as np

    from ..models.latency import fit_scale
    from ..models.latency_measure import measure_archs, measure_table, sample_archs, stderr_progress, table_timing
    from ..space import get_space
    space = get_space(model.get('space', 'cream_mbv3'))
    res, ncls = int(model.get('resolution', 224)), int(model.get('num_classes', 1000))
    timing = _spec_timing(spec)
    print(f'measuring a latency table of {space.name} at {res} px on this machine -> {path}', flush=True)
    table = measure_table(space, res, num_classes=ncls, threads=int(spec.get('threads', 1)),
                          progress=stderr_progress(), anchor=bool(spec.get('anchor', False)), **timing)
    n = int(spec.get('calibrate', 0))
    if n:
        # at the supernet's own depths: a scale fitted on the whole space's (mostly deeper) archs misprices
        # the search's paths (docs/latency.md: the digits demo's picks measured faster than predicted)
        depths = model.get('depths')
        archs = sample_archs(space, res, n, num_classes=ncls, depths=None if depths is None else tuple(depths))
        measured = measure_archs(archs, progress=stderr_progress(), **table_timing(table, **timing))
        table = table.with_correction(fit_scale(table, np.stack([a.encode() for a in archs]), measured))
    path.parent.mkdir(parents=True, exist_ok=True)
    table.save(path)


__all__ = ['TABLE_FILE', 'load_search_table', 'measure_pick', 'prepare_latency_table', 'time_pick_here']


if __name__ == '__main__':
    _main(sys.argv[1])
