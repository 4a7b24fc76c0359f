"""Running jobs: the pool (``--jobs`` at once, each result stored under its spec's digest and reused), the
wall time of a run rebuilt from its jobs' seconds (``makespan``), and the committed results (``archive``).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

from cream_det.space import Arch
from cream_det.utils.io import atomic_write_text

from .jobs import JOBS
from .params import ARCHIVE, ROOT, spec_digest

#: the command line a job's own process runs (``nas_proxy.py _job <spec> <result>``)
ENTRY = ROOT / 'benchmarks' / 'nas_proxy.py'


def job_wall(res: dict) -> float:
    """A job's wall time: its process's (start and data loading too), or its own seconds when larger (a resumed
    search's last process is shorter than the epochs it kept) or when the process time was not recorded."""
    return max(res['seconds'], res.get('process_seconds', 0.0))


def first_ready(pending: list[str], done: set[str], needs: dict[str, tuple[str, ...]]) -> str | None:
    """The job a free worker takes: the first in order whose needs are all done (``Pool`` and ``makespan``)."""
    return next((n for n in pending if all(d in done for d in needs.get(n, ()))), None)


def makespan(seconds: dict[str, float], workers: int, needs: dict[str, tuple[str, ...]] | None = None) -> float:
    """The wall time of jobs of these durations (in this order) run ``workers`` at a time as ``Pool`` runs them:
    a run's wall time rebuilt from its jobs' measured seconds, for a run made over several invocations."""
    needs = needs or {}
    pending, finish, free = list(seconds), {}, [0.0] * max(1, workers)
    while pending:
        w = free.index(min(free))
        t = free[w]
        while (name := first_ready(pending, {n for n, f in finish.items() if f <= t}, needs)) is None:
            later = [f for f in finish.values() if f > t]
            if not later:
                raise ValueError(f'jobs {pending} wait on jobs that are not given')
            t = min(later)                     # the worker waits for the next job to end
        pending.remove(name)
        finish[name] = free[w] = t + seconds[name]
    return max(finish.values(), default=0.0)


class Pool:
    """Runs jobs (``--jobs`` at once, each in its own process; in this process with ``--jobs 1``), keeping
    each result in ``jobs/<name>.json`` so that a rerun only does what is missing. A job run with other
    settings under the same name (a pilot recipe's ground truth) first moves the result there to
    ``jobs/kept/<name>.<digest>.json``, where it is still found: trying a recipe does not lose the last one's
    results, nor the measured times a run's wall time is rebuilt from. ``archive`` (``ARCHIVE``: results
    committed to the repository, ``<name>.<digest>.json``) is read too, so that a run longer than a session
    continues in the next one from a fresh clone; only a result of the very same spec is taken from it."""

    def __init__(self, out: Path, jobs: int, archive: Path | None = None) -> None:
        self.dir, self.jobs, self.archive = out / 'jobs', jobs, archive
        self.dir.mkdir(parents=True, exist_ok=True)

    def run(self, named_specs: dict[str, dict | Callable[[dict[str, dict]], dict]],
            needs: dict[str, tuple[str, ...]] | None = None) -> dict[str, dict]:
        """Runs what is not stored yet and returns every job's result.

        ``needs[name]``: jobs (earlier in the order) that must be done before ``name`` starts; a job's spec may be
        a function of their results (a pick's arch is its search's result). One pool for jobs that depend on
        each other keeps both workers busy: a pick starts as soon as its search ends, beside the next search,
        instead of waiting for the slowest search of a phase."""
        needs = needs or {}
        order = list(named_specs)
        for name, deps in needs.items():
            if name not in named_specs or any(d not in order[:order.index(name)] for d in deps):
                raise ValueError(f'job {name} needs {deps}: each must be a job given before it')
        results: dict[str, dict] = {}
        archived = 0
        for name in order:                          # what is stored already (a function spec once its needs are)
            if all(d in results for d in needs.get(name, ())):
                found = self._find(name, self._spec(named_specs[name], needs.get(name, ()), results))
                if found is not None:
                    results[name] = found[1]
                    archived += found[0].parent == self.archive
        todo = [n for n in order if n not in results]
        if archived:
            print(f'{archived} job(s) taken from the committed results in {self.archive}', flush=True)
        if todo:
            print(f'{len(todo)} job(s) to run ({len(order) - len(todo)} done before), {self.jobs} at once', flush=True)
            t0 = time.time()
            self._schedule(todo, named_specs, needs, results)
            print(f'  done in {time.time() - t0:.0f} s', flush=True)
        return {n: results[n] for n in order}

    @staticmethod
    def _spec(spec: dict | Callable[[dict[str, dict]], dict], deps: tuple[str, ...], results: dict) -> dict:
        return spec({d: results[d] for d in deps}) if callable(spec) else spec

    def _schedule(self, todo: list[str], named_specs: dict, needs: dict, results: dict) -> None:
        """``self.jobs`` workers, each taking the first job whose needs are done; a failed job stops new starts and
        raises here once the running ones end (its dependents never start)."""
        pending, running, errors = list(todo), [0], []
        cond = threading.Condition()

        def take() -> tuple[str, dict] | None:
            with cond:
                while not errors and pending:
                    name = first_ready(pending, set(results), needs)
                    if name is not None:
                        pending.remove(name)
                        running[0] += 1
                        return name, self._spec(named_specs[name], needs.get(name, ()), results)
                    if not running[0]:
                        errors.append(ValueError(f'jobs {pending} wait on jobs that never run'))
                        break
                    cond.wait()
                return None

        def worker() -> None:
            while (job := take()) is not None:
                name, spec = job
                try:
                    self._one(name, spec)
                    res = self.stored(name, spec)
                except BaseException as e:          # SystemExit from a failed job's process, too
                    res, err = None, e
                else:
                    err = None if res is not None else RuntimeError(f'job {name} stored no result')
                with cond:
                    running[0] -= 1
                    if err is None:
                        results[name] = res
                    else:
                        errors.append(err)
                    cond.notify_all()

        if self.jobs == 1:                          # in this process, in order (a job may need the main thread)
            worker()
        else:
            threads = [threading.Thread(target=worker, daemon=True) for _ in range(self.jobs)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        if errors:
            raise errors[0]

    def stored(self, name: str, spec: dict) -> dict | None:
        """The job's stored result, if one was made from this very spec (other settings: run it again)."""
        found = self._find(name, spec)
        return None if found is None else found[1]

    def _find(self, name: str, spec: dict) -> tuple[Path, dict] | None:
        """The result of this very spec and where it is: this run's own, a kept one, or else a committed one."""
        digest = spec_digest(spec)
        if spec.get('save') and not Path(spec['save']).is_file():
            return None              # a checkpoint a later job loads (DNA's teacher) is not committed: train it here
        places = [self.dir / f'{name}.json', self.dir / 'kept' / f'{name}.{digest}.json']
        if self.archive is not None:
            places.append(self.archive / f'{name}.{digest}.json')
        for path in places:
            if path.is_file():
                res = json.loads(path.read_text())
                if res.get('spec_digest') == digest:
                    return path, res['result']
        return None

    def _one(self, name: str, spec: dict) -> None:
        result, spec_file = self.dir / f'{name}.json', self.dir / f'{name}.spec.json'
        if result.is_file():                        # another spec's result: keep it (see the class)
            old = json.loads(result.read_text()).get('spec_digest')
            if old and old != spec_digest(spec):
                (self.dir / 'kept').mkdir(exist_ok=True)
                os.replace(result, self.dir / 'kept' / f'{name}.{old}.json')
        t = time.time()
        if self.jobs == 1:
            res = JOBS[spec['kind']](spec)
        else:
            atomic_write_text(spec_file, json.dumps(spec) + '\n')
            log = self.dir / f'{name}.log'
            env = {**os.environ, 'OMP_NUM_THREADS': '1', 'PYTHONPATH': str(ROOT)}
            with open(log, 'w') as f:
                r = subprocess.run([sys.executable, str(ENTRY), '_job', str(spec_file), str(result)], stdout=f,
                                   stderr=subprocess.STDOUT, env=env, cwd=ROOT)
            if r.returncode != 0:
                tail = log.read_text().splitlines()[-15:]
                raise SystemExit(f'job {name} failed (exit {r.returncode}); its log {log} ends:\n' + '\n'.join(tail))
            res = json.loads(result.read_text())['result']
        # the job's wall time with its process's start and data loading, which the job's own seconds leave out
        res['process_seconds'] = round(time.time() - t, 1)
        atomic_write_text(result, json.dumps({'spec_digest': spec_digest(spec), 'result': res}) + '\n')
        self._report(name, res, t)

    @staticmethod
    def _report(name: str, res: dict, t: float) -> None:
        what = (f"top-1 {res['top1']:.2f} %" if 'top1' in res else f"pick {Arch.from_dict(res['pick'])}"
                if 'pick' in res else f"first epoch {res['epoch_seconds']:.0f} s" if 'epoch_seconds' in res
                else f"{len(res['gt_scores'])} archs scored")
        print(f'  {name}: {what} ({time.time() - t:.0f} s)', flush=True)


def archive_of(args: argparse.Namespace) -> Path | None:
    """The committed results a run reads, unless ``--no-archive``."""
    return None if getattr(args, 'no_archive', False) else ARCHIVE


def archive(args: argparse.Namespace) -> None:
    """Copies the results under ``--out/jobs`` (not their checkpoints) to ``ARCHIVE``, to be committed."""
    src = Path(args.out) / 'jobs'
    if not src.is_dir():
        raise SystemExit(f'nas_proxy archive: {src} does not exist (no run under --out {args.out})')
    ARCHIVE.mkdir(parents=True, exist_ok=True)
    n = 0
    for path in sorted(src.glob('*.json')):
        res = json.loads(path.read_text())
        if 'spec_digest' in res and 'result' in res:          # not a job's spec file
            atomic_write_text(ARCHIVE / f"{path.stem}.{res['spec_digest']}.json", json.dumps(res) + '\n')
            n += 1
    print(f'{n} job result(s) of {src} copied to {ARCHIVE}', flush=True)
