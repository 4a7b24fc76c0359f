"""The kinds of job (a stand-alone training, a search, a search's scores of the ground-truth archs), the
search's config and its convergence hook, and one job run in its own process (``_job``).
"""
from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from cream_det.search.evaluate import accuracy
from cream_det.search.ranking_tool import train_standalone
from cream_det.space import CREAM_SPACE, Arch
from cream_det.utils.io import atomic_write_text

from . import params
from .data import load
from .params import CREAM_ARMS, DEMO_CONFIG, board_eval_batches, classes, spec_digest


def standalone_job(spec: dict) -> dict:
    """Train one arch from scratch with the ground truth's recipe; top-1 on the task's val split."""
    p = spec['params']
    torch.set_num_threads(1)
    train = load(Path(spec['data']), 'train', p['size'], p['batch'], order_seed=spec['seed'])
    val = load(Path(spec['data']), 'val', p['size'], 256)
    arch = Arch.from_dict(spec['arch'])
    t = time.time()
    net = train_standalone(arch, train, p['epochs'], lr=p['lr'], seed=spec['seed'], warmup_epochs=p.get('warmup', 0.0),
                           clip_grad=p.get('clip', 0.0), head_init=p.get('head', 'timm'))
    out = {'top1': accuracy(net, val), 'seconds': round(time.time() - t, 1)}
    if spec.get('save'):
        from cream_det.models.checkpoint import save_subnet_checkpoint
        save_subnet_checkpoint(spec['save'], net.state_dict(), arch, top1=out['top1'])
    return out


def demo_config(name: str) -> Any:
    """The strategy's demo config as ``configs/search`` holds it (its ``_base_`` chain resolved)."""
    from mmengine.config import Config
    return Config.fromfile(str(params.CONFIG_DIR / DEMO_CONFIG[name]))


def config_digest(spec: dict) -> str:
    """The digest of the whole config a search spec runs (``search_config``): every value its demo config, that
    config's ``_base_`` files (``_base_search.py`` too) and ``search_config``'s derived settings give. A search
    spec holds it, so editing a demo config or a derivation reruns the searches it changes instead of reusing
    results made under the old values; the spec's own fields (the ``config`` key aside) are part of it."""
    built = search_config({k: v for k, v in spec.items() if k != 'config'}).to_dict()
    return hashlib.sha256(json.dumps(built, sort_keys=True, default=repr).encode()).hexdigest()[:16]


def search_config(spec: dict) -> Any:
    """The demo config of the strategy, moved onto the proxy task, its range, budget and seed."""
    p, name, seed = spec['params'], spec['strategy'], spec['seed']
    cfg = demo_config(name)
    epochs = p['search_epochs']
    iters = -(-p['search_train'] // p['batch'])
    cfg.model.update(macs_range=tuple(spec['macs_range']), resolution=p['size'], num_classes=classes(p),
                     depths=(p['depths'],) * len(CREAM_SPACE.stages), seed=seed,
                     head_init=p.get('search_head', 'timm'))
    st = cfg.model.strategy
    if name.startswith('cream'):
        # the authors' board of 10; about six meta updates per epoch as theirs (every 200 of ~1250 iterations); the
        # matcher's lr scaled to the distillation steps as the demo's (lr x steps ~ 12.5 on ImageNet at 1e-4 x
        # 125,000). The warm-up: the first arms' max(1, epochs // 6) epochs (1 of 5 on the glyphs), or a fraction
        # of the search (CREAM_ARMS: the authors' 21/120, half for the late start), with board entries scored on
        # the authors' 1,024 images (board_eval_batches)
        teacher, fraction, board_images = CREAM_ARMS[name]
        if fraction is None:
            warm = dict(warmup_epochs=max(1, epochs // 6))
            distill_steps = max(1, (epochs - max(1, epochs // 6)) * iters)
        else:
            warm = dict(warmup_epochs=None, warmup_fraction=fraction)
            distill_steps = max(1, round((1 - fraction) * epochs * iters))
        if board_images:
            warm['board_eval_batches'] = board_eval_batches(p)
        st.update(board_size=10, teacher=teacher, meta_interval=max(2, iters // 6),
                  meta_lr=min(1e-2, 12.5 / distill_steps), **warm)
    elif name == 'dna':
        st.teacher = dict(checkpoint=spec['teacher'])       # replaced, not merged into the demo's hint
        st.stage_epochs = epochs // 5
    elif name == 'mixpath':
        cfg.pareto.update(population=max(8, p['paths'] // 3), generations=4, calib_batches=p['calib'])
    if name == 'spos':
        cfg.evolution.update(population=max(8, p['paths'] // 3), generations=4, calib_batches=p['calib'])
    for key in ('train_dataloader', 'search_val_dataloader'):
        loader = cfg[key]
        loader.dataset.update(root=spec['data'] if key == 'train_dataloader' else spec['held_out'],
                              input_size=p['size'])
        loader.batch_size = p['batch'] if key == 'train_dataloader' else 256
    cfg.train_cfg.max_epochs = epochs
    if name == 'dna':
        cfg.param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=True, begin=0, end=epochs)]
    else:
        cfg.optim_wrapper.optimizer.lr = p['search_lr']
        cfg.param_scheduler = [dict(type='LinearLR', start_factor=1.0, end_factor=0.0, by_epoch=True, begin=0,
                                    end=epochs, convert_to_iter_based=True)]
    cfg.randomness = dict(seed=seed, diff_rank_seed=False)
    cfg.work_dir = spec['work_dir']
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=100)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1, max_keep_ckpts=1)
    every = max(1, epochs // p['points'])
    cfg.custom_hooks = [dict(type='SearchStateHook'), dict(type='SearchOutputsHook', plot=False),
                        dict(type='ProxyConvergenceHook', spec=spec, every=every)]
    return cfg


def scorer(spec: dict, model: Any, limit: int | None = None) -> Callable[[list[Arch]], np.ndarray]:
    """Each arch's score under the supernet as ``tools/compare_strategies.py`` scores it (``path_scores``:
    inherited top-1 after BN recalibration on fixed training batches; minus DNA's summed block rating for
    DNA), on the searches' held-out set (all of it, or a fixed random ``limit`` of it), which is read once here."""
    from cream_det.engine.compare import SearchRun, path_scores
    p = spec['params']
    held = load(Path(spec['held_out']), 'val', p['size'], 256, order_seed=None if limit is None else 0, limit=limit)
    calib = load(Path(spec['data']), 'train', p['size'], p['batch'], order_seed=1000, limit=p['calib'] * p['batch'])
    run = SearchRun(Path(spec['work_dir']), None, model)
    return lambda archs: path_scores(run, archs, calib, held)


# when this process's search job started, and how long the epochs of the checkpoint it resumed from took: a search
# interrupted (session end, SIGKILL) and resumed reports the time of the epochs it kept plus the time of its resumption
_INVOCATION = {'t0': time.time(), 'before': 0.0}


def register_hook() -> None:
    from mmengine.hooks import Hook
    from mmengine.registry import HOOKS

    @HOOKS.register_module(force=True)
    class ProxyConvergenceHook(Hook):
        """Scores the fixed convergence paths every ``every`` epochs into ``convergence.json``; keeps the search's
        running time per epoch in ``elapsed.json``."""
        priority = 'LOW'

        def __init__(self, spec: dict, every: int, plan: bool = False) -> None:
            self.spec, self.every, self.plan = spec, every, plan
            self.score: Callable[[list[Arch]], np.ndarray] | None = None     # built (data read) at the first point
            self._train_start = time.time()

        @staticmethod
        def _elapsed(runner: Any) -> tuple[Path, dict[str, float]]:
            path = Path(runner.work_dir) / 'elapsed.json'
            return path, (json.loads(path.read_text()) if path.is_file() else {})

        def before_train(self, runner: Any) -> None:
            self._train_start = time.time()
            _, history = self._elapsed(runner)
            _INVOCATION['before'] = float(history.get(str(runner.epoch), 0.0))     # 0 for a fresh run

        def after_train_epoch(self, runner: Any) -> None:
            epoch = runner.epoch + 1           # mmengine counts the epoch up after this hook
            if self.plan:                      # ``plan_search_job``: the first epoch's time, then stop
                return self._plan(runner)
            path, history = self._elapsed(runner)
            history = {k: v for k, v in history.items() if int(k) < epoch}       # a resumed run rewrites its own
            history[str(epoch)] = round(_INVOCATION['before'] + time.time() - _INVOCATION['t0'], 1)
            atomic_write_text(path, json.dumps(history) + '\n')
            if epoch % self.every:
                return
            model = getattr(runner.model, 'module', runner.model)
            was_training = model.training
            archs = [Arch.from_dict(a) for a in self.spec['paths']]
            self.score = self.score or scorer(self.spec, model, self.spec['params'].get('conv_val'))
            scores = self.score(archs)
            model.train(was_training)
            path = Path(runner.work_dir) / 'convergence.json'
            points = json.loads(path.read_text()) if path.is_file() else []
            points = [q for q in points if q['epoch'] < epoch]        # a resumed run rewrites its own
            points.append({'epoch': epoch, 'mean': float(scores.mean()), 'scores': scores.tolist()})
            atomic_write_text(path, json.dumps(points) + '\n')

        def _plan(self, runner: Any) -> None:
            trained = time.time() - self._train_start
            model = getattr(runner.model, 'module', runner.model)
            t = time.time()
            self.score = scorer(self.spec, model, self.spec['params'].get('conv_val'))
            self.score([Arch.from_dict(a) for a in self.spec['paths']])
            atomic_write_text(Path(runner.work_dir) / 'plan.json', json.dumps(
                {'epoch_seconds': round(trained, 1), 'score_seconds': round(time.time() - t, 1),
                 'paths': len(self.spec['paths'])}) + '\n')
            raise PlanStop


class PlanStop(Exception):
    """Raised by the convergence hook once a plan's first epoch is timed: the search stops there."""


def plan_search_job(spec: dict) -> dict:
    """The first epoch of a search (``spec['search']``, a comparison's own search spec in a work dir of its own), timed:
    its training seconds and the seconds of scoring its convergence paths once (``compare --plan``)."""
    import cream_det  # noqa: F401
    from cream_det.engine.search_run import run_search
    torch.set_num_threads(1)
    register_hook()
    search = spec['search']
    work = Path(search['work_dir'])
    if work.is_dir():
        shutil.rmtree(work)                    # a plan times a fresh first epoch, never a resumed one
    work.mkdir(parents=True)
    cfg = search_config(search)
    for hook in cfg.custom_hooks:
        if hook['type'] == 'ProxyConvergenceHook':
            hook['plan'] = True
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=10 ** 6)      # nothing to keep
    try:
        run_search(cfg)
    except PlanStop:
        pass
    return {**json.loads((work / 'plan.json').read_text()), 'seconds': 0.0}


def plan_standalone_job(spec: dict) -> dict:
    """One epoch of the stand-alone recipe (``spec['standalone']`` trained for one epoch), timed."""
    one = dict(spec['standalone'], params=dict(spec['standalone']['params'], epochs=1))
    return {'epoch_seconds': standalone_job(one)['seconds'], 'seconds': 0.0}


def claim_work_dir(work: Path, digest: str) -> bool:
    """Make ``work`` this spec's; True when it holds an interrupted run of the same spec to resume.

    A work dir left by another recipe is removed: resuming it would train on under other settings."""
    if work.is_dir() and not made_by(work, digest):
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    atomic_write_text(work / 'spec_digest', digest + '\n')
    return (work / 'last_checkpoint').is_file()


def made_by(work: Path, digest: str) -> bool:
    """True when the work dir is the one of the spec with this digest (its ``spec_digest`` marker)."""
    marker = work / 'spec_digest'
    return marker.is_file() and marker.read_text().strip() == digest


def search_job(spec: dict) -> dict:
    """One supernet, searched as ``tools/search.py`` does; its convergence and its pick (its scores of the
    ground-truth archs are a ``score`` job of their own, from the final checkpoint)."""
    import cream_det  # noqa: F401  (registers the model, hooks and datasets)
    from cream_det.engine.search_run import run_search
    torch.set_num_threads(1)
    register_hook()
    _INVOCATION.update(t0=time.time(), before=0.0)
    work = Path(spec['work_dir'])
    resume = claim_work_dir(work, spec_digest(spec))
    _, summary = run_search(search_config(spec), resume=resume)
    conv = json.loads((work / 'convergence.json').read_text())
    res = {'pick': summary['arch'], 'final_pick': summary['final_pick'],
           'convergence': [{'epoch': c['epoch'], 'mean': c['mean'], 'scores': c['scores']} for c in conv],
           'seconds': round(_INVOCATION['before'] + time.time() - _INVOCATION['t0'], 1)}
    if spec['strategy'].startswith('cream'):         # Cream's own per-epoch report (m, board, teachers), kept
        res['cream_epochs'] = cream_epochs(work)
    return res


def cream_epochs(work: Path) -> list[dict]:
    """``Cream``'s per-epoch report (``<work_dir>/cream_epochs.jsonl``, one dict per epoch); a Cream search that wrote
    none is an error: the comparison's reading of the matcher depends on it."""
    from cream_det.search.cream_epochs import FILE_NAME, read_epoch_log
    path = work / FILE_NAME
    if not path.is_file():
        raise SystemExit(f'{path} is missing: this Cream search wrote no per-epoch report; rerun the search')
    return read_epoch_log(path)


def score_job(spec: dict) -> dict:
    """A finished search's scores of the ground-truth archs, from its final checkpoint.

    A job of its own so that a search does not depend on which archs the ground truth holds: choosing
    other ground-truth archs rescores the searches in seconds instead of rerunning them."""
    import cream_det  # noqa: F401
    from cream_det.engine.compare import load_search
    torch.set_num_threads(1)
    register_hook()                            # the work dir's config names the harness's hook
    t0 = time.time()
    search = spec['search']
    if not holds_finished_search(search, spec['search_digest']):
        raise SystemExit(f"{search['work_dir']} holds no finished search of this spec: run its search job first")
    run = load_search(search['work_dir'])
    scores = scorer(search, run.model)([Arch.from_dict(a) for a in spec['gt_archs']])
    return {'gt_scores': scores.tolist(), 'seconds': round(time.time() - t0, 1)}


def holds_finished_search(search: dict, digest: str) -> bool:
    """True when the search's work dir holds this spec's search (not another recipe's), run to its last epoch (not
    interrupted)."""
    work = Path(search['work_dir'])
    last = work / 'last_checkpoint'
    return (made_by(work, digest) and last.is_file()
            and Path(last.read_text().strip()).name == f"epoch_{search['params']['search_epochs']}.pth")


JOBS = {'standalone': standalone_job, 'search': search_job, 'score': score_job, 'plan_search': plan_search_job,
        'plan_standalone': plan_standalone_job}


def run_job(spec_file: str, result_file: str) -> None:
    spec = json.loads(Path(spec_file).read_text())
    res = JOBS[spec['kind']](spec)
    atomic_write_text(Path(result_file), json.dumps({'spec_digest': spec_digest(spec), 'result': res}) + '\n')
