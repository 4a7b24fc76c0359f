"""Supernet search inside mmengine: a model whose ``train_step`` is the strategy's, plus its hooks.

As in mmrazor's NAS algorithms, the search logic lives in the model's ``train_step`` so that the
Runner brings logging, checkpoints, resume, progress and distributed launch. The strategy's state
(board with its stored images, matching network and its optimizer, sampler RNG, path history) is
written into every checkpoint by :class:`SearchStateHook`, so a resumed search continues exactly.
(Not as module extra state: mmengine broadcasts every state-dict entry as a tensor at start-up.)
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch
from mmengine.hooks import Hook
from mmengine.logging import MessageHub
from mmengine.model import BaseModel, MMDistributedDataParallel
from mmengine.registry import HOOKS, MODEL_WRAPPERS, MODELS

from ..errors import CheckpointError, ConfigError
from ..models.supernet_kinds import supernet_class
from ..space.sizing import supernet_depths
from ..utils import distributed as D
from ..search.cream_epochs import write_epoch_log
from ..search.strategies import StepContext, build_strategy, supernet_args
from ..space import PathCodes, get_space
from ..space.budget import latency_guard, resolve_latency_range
from ..space.sampler import check_depths, path_budget
from .search_latency import load_search_table
from ..utils.io import atomic_write_bytes, png_bytes


def unpack_batch(data: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """(images, labels) from what the data preprocessor returns (dict or pair)."""
    if isinstance(data, dict):
        labels = next((data[k] for k in ('label', 'labels', 'gt_label') if k in data), None)
        if labels is None:
            raise ConfigError(f'a search batch needs labels under "label"; got keys {sorted(data)}')
        return data['inputs'], torch.as_tensor(labels).to(data['inputs'].device)
    inputs, labels = data
    return inputs, torch.as_tensor(labels).to(inputs.device)


@MODELS.register_module()
class SupernetSearch(BaseModel):
    """A weight-sharing supernet trained by a search strategy.

    Args:
        strategy: ``dict(type='cream'|'spos'|'mixpath', ...)`` (see ``cream_det.search.strategies``);
            it also decides the supernet, through the codes of its paths (``cream_det.models.supernet_kinds``):
            ``mixpath`` (``max_paths=m``) trains a :class:`~cream_det.models.mixpath_supernet.MixPathSupernet`,
            the others the single-path one.
        space: search-space name (or spec dict).
        macs_range: ``(min, max)`` MACs of the archs searched for.
        latency_table: a latency table file (``tools/latency_table.py``) of this space, resolution and
            class count (``dict(measure=True, ...)``: measured at run time by ``tools/search.py``,
            :mod:`.search_latency`); with it, paths, the board and arch files carry predicted ms.
        latency_range: ``(min, max)`` predicted ms of the archs searched for (needs ``latency_table``;
            an end may be a percentage of the reachable span, ``'25%'``); the final arch meets both ranges
            and Cream's board calls a path cheaper by its latency (docs/latency.md). ``None``: no limit.
        latency_margin: the fraction of its ms a pick may measure off its prediction and still lie inside
            ``latency_range``: every path is held to ``(lo * (1 + m), hi * (1 - m))`` (the attribute
            ``latency_range``; ``latency_asked`` keeps the range asked for). 0 (default): the range itself.
        resolution, num_classes: of the search data.
        depths: per-stage supernet depth; ``None`` sizes it from ``macs_range`` (and the top of
            ``latency_range``) by the authors' rule (Cream's, on single-path costs; give MixPath
            searches their depths).
        seed: seed of path sampling (the same on every rank).
        init: supernet initialisation, ``'independent'`` (the authors') or ``'aligned'``
            (see :func:`cream_det.models.supernet.align_candidates_`; for short runs).
        head_init: the classifier's, ``'timm'`` (the authors') or ``'zero'`` (for few classes; see
            :class:`~cream_det.models.supernet.Supernet`).
    """

    def __init__(self, strategy: dict, macs_range: Sequence[float], space: 'str | dict' = 'cream_mbv3',
                 resolution: int = 224, num_classes: int = 1000, depths: Sequence[int] | None = None,
                 drop_rate: float = 0.0, seed: int = 0, init: str = 'independent', head_init: str = 'timm',
                 data_preprocessor: dict | None = None, init_cfg: dict | None = None,
                 latency_table: 'str | dict | None' = None, latency_range: Sequence[Any] | None = None,
                 latency_margin: float = 0.0) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        sp = get_space(space)
        rng = (float(macs_range[0]), float(macs_range[1]))
        sn_args = supernet_args(strategy)
        # the strategy's codes (MixPath's max_paths: op-set masks) decide the supernet and the range's bounds
        codes = PathCodes(sp, sn_args.get('max_paths'))
        table = load_search_table(latency_table, sp, resolution, num_classes)
        if table is not None and codes.multipath:
            raise ConfigError('model.latency_table with a MixPath strategy: a latency table times one op per layer, '
                              'a multi-path layer runs several; drop latency_table/latency_range (docs/latency.md)')
        if latency_margin and latency_range is None:
            raise ConfigError(f'model.latency_margin={latency_margin}: a margin under a latency_range, which is not '
                              'given; set model.latency_range (and latency_table), or drop the margin')
        if table is not None:          # '25%' ends: of the span of the supernet's depths (any depth when sized)
            latency_range = resolve_latency_range(latency_range, table.bounds(check_depths(sp, depths)))
        asked = latency_range
        if table is not None and latency_range is not None and latency_margin:
            latency_range = latency_guard(latency_range, latency_margin)
        if depths is None:
            depths, fitted = supernet_depths(sp, rng, resolution, num_classes, latency_table=table,
                                             latency_max=None if latency_range is None else latency_range[1])
            if fitted != resolution:
                raise ConfigError(f'macs_range {rng} needs resolution {fitted}, but the data is at {resolution}: '
                                  f'set model.resolution={fitted} and the pipeline to match')
        # the ranges must hold archs of these depths (and widths): a SpaceError names the reachable span
        # (and refuses a latency range without a table)
        limits = path_budget(codes, resolution, num_classes, check_depths(sp, depths), rng, table, latency_range)
        self.supernet = supernet_class(codes)(sp, depths, num_classes, drop_rate=drop_rate, resolution=resolution,
                                              init=init, head_init=head_init, **sn_args)
        self.macs_range = rng
        self.latency_table = table
        lat = limits.get('latency')
        #: what every path is held to (the range asked for, less the margin), and the range asked for
        self.latency_range = None if lat is None else lat.lo_hi
        self.latency_asked = None if asked is None else (float(asked[0]), float(asked[1]))
        self.latency_margin = float(latency_margin)
        self.strategy = build_strategy(strategy, self.supernet, rng, seed, latency_table=table,
                                       latency_range=self.latency_range)
        # modules a strategy trains beside the supernet (DNA's bridges): in the optimizer, DDP and checkpoints
        self.strategy_modules = torch.nn.ModuleDict(self.strategy.trainable_modules())
        self.batch_idx: int | None = None      # the epoch's batch index, set by SearchStateHook each iteration
        self._last_path: Any = None            # the path of the step's last forward (FiniteLossHook names it)

    def forward(self, inputs: torch.Tensor, arch: Any = None, mode: str = 'tensor') -> torch.Tensor:
        if arch is None:
            raise ConfigError('SupernetSearch.forward needs a path (arch=...)')
        if mode == 'strategy':          # the strategy's own computation, run through the (DDP-wrapped) model
            return self.strategy.forward(self, inputs, arch)
        return self.supernet(inputs, arch)

    def train_step(self, data: Any, optim_wrapper: Any, forward: Any = None) -> dict[str, torch.Tensor]:
        data = self.data_preprocessor(data, True)
        inputs, labels = unpack_batch(data)
        hub = MessageHub.get_current_instance()
        run = forward or (lambda x, code, **kw: self(x, code, **kw))
        self._last_path = None

        def remembered(x: Any, code: Any, **kw: Any) -> Any:
            self._last_path = code
            return run(x, code, **kw)
        ctx = StepContext(self.supernet, remembered, optim_wrapper, inputs, labels, step=hub.get_info('iter', 0),
                          epoch=hub.get_info('epoch', 0), batch_idx=self.batch_idx,
                          max_iters=hub.get_info('max_iters'))
        # mmengine's own train_step runs the forward in optim_context: with AmpOptimWrapper that is
        # where autocast is entered, so without it --amp would scale losses of fp32 forwards
        with optim_wrapper.optim_context(self):
            log = self.strategy.train_step(ctx)
        return {k: torch.tensor(float(v)) for k, v in log.items()}

    def step_description(self) -> str | None:
        """The path the current step trains, in words (for an error raised inside the step)."""
        code = self._last_path
        if code is None:
            return None
        if isinstance(code, (tuple, list)) and all(isinstance(c, int) for c in code):
            return f'path {tuple(code)} = {self.supernet.arch_of(tuple(code))}'
        return f'path {code!r}'


@MODEL_WRAPPERS.register_module()
class SearchDDP(MMDistributedDataParallel):
    """DDP for :class:`SupernetSearch`: the strategy's step, with student forwards through DDP."""

    def train_step(self, data: Any, optim_wrapper: Any) -> dict[str, torch.Tensor]:
        return self.module.train_step(data, optim_wrapper, forward=lambda x, code, **kw: self(x, code, **kw))


@HOOKS.register_module()
class SearchStateHook(Hook):
    """Saves the strategy's state in each checkpoint and restores it on resume (``search_state`` key);
    tells the strategy the epoch's batch index (Cream keys its meta update to it, as the authors do),
    logs what the schedule means for it before training, and its report after each epoch. A strategy
    with an ``epoch_log_file`` (Cream: ``cream_epochs.jsonl``) has that file in the work dir rewritten
    from its ``epoch_log`` (rank 0) at the start and after each epoch: the log lives in the strategy's
    state, so a resumed search holds each epoch once, as an uninterrupted one."""

    priority = 'VERY_HIGH'

    def before_train(self, runner: Any) -> None:
        from mmengine.runner import EpochBasedTrainLoop
        loop = runner.train_loop
        # an iteration-based loop hands before_train_iter the global iteration as its batch index
        iters_per_epoch = len(loop.dataloader) if isinstance(loop, EpochBasedTrainLoop) else loop.max_iters
        for line in search_model(runner.model).strategy.check_schedule(iters_per_epoch, loop.max_iters):
            runner.logger.info(line)
        self._write_epoch_log(runner)

    def before_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None) -> None:
        search_model(runner.model).batch_idx = batch_idx

    def after_train_epoch(self, runner: Any) -> None:
        line = search_model(runner.model).strategy.epoch_report()
        if line:
            runner.logger.info(f"epoch {runner.epoch + 1}: {line}")
        self._write_epoch_log(runner)

    def _write_epoch_log(self, runner: Any) -> None:
        strategy = search_model(runner.model).strategy
        if strategy.epoch_log_file is not None and D.rank() == 0:
            write_epoch_log(Path(runner.work_dir) / strategy.epoch_log_file, strategy.epoch_log)

    def before_save_checkpoint(self, runner: Any, checkpoint: dict) -> None:
        checkpoint['search_state'] = search_model(runner.model).strategy.state_dict()

    def after_load_checkpoint(self, runner: Any, checkpoint: dict) -> None:
        if 'search_state' not in checkpoint:
            raise CheckpointError('the checkpoint has no search_state: it was not written by a search '
                                  '(or by one without SearchStateHook), so the board cannot be restored')
        search_model(runner.model).strategy.load_state_dict(checkpoint['search_state'])


def search_model(model: Any) -> 'SupernetSearch':
    """The :class:`SupernetSearch` inside a Runner's model (DDP-wrapped or not)."""
    return model.module if hasattr(model, 'module') else model


def load_search_checkpoint(model: 'SupernetSearch', path: 'str | Path', strategy_state: bool = True) -> dict:
    """Load a search checkpoint into ``model`` strictly (the supernet and the strategy's modules), and
    the strategy's state (board, sampler, ...) unless ``strategy_state`` is off; returns the checkpoint."""
    from ..models.checkpoint import extract_state_dict, read_checkpoint
    ckpt = read_checkpoint(path)
    model.load_state_dict(extract_state_dict(ckpt, source=str(path)), strict=True)
    if strategy_state and 'search_state' in ckpt:
        model.strategy.load_state_dict(ckpt['search_state'])
    return ckpt


@HOOKS.register_module()
class SearchOutputsHook(Hook):
    """Keeps the search's human-readable outputs in the work dir, rewritten atomically (rank 0).

    ``board.json`` whenever the board changes; at the end ``board.png`` (accuracy vs MACs of every
    trained path, board members highlighted). The final pick and ``arch.json`` are
    :func:`cream_det.engine.search_run.run_search`'s.
    """

    priority = 'LOW'

    def __init__(self, plot: bool = True) -> None:
        self.plot = plot
        self._version = -1

    def _model(self, runner: Any) -> SupernetSearch:
        return search_model(runner.model)

    def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
        st = self._model(runner).strategy
        if getattr(st, 'board_version', self._version) != self._version:
            self._version = st.board_version
            if D.rank() == 0:
                self.write_board(runner)

    def after_train(self, runner: Any) -> None:
        if D.rank() != 0:
            return
        model = self._model(runner)
        if hasattr(model.strategy, 'board'):
            self.write_board(runner)
        if self.plot:
            plot_board(model, Path(runner.work_dir) / 'board.png')

    def write_board(self, runner: Any) -> None:
        sn = self._model(runner).supernet
        self._model(runner).strategy.board.write_json(Path(runner.work_dir) / 'board.json', sn.space,
                                                      sn.resolution, sn.num_classes)


def plot_board(model: SupernetSearch, path: Path) -> Path:
    """Accuracy vs MACs of every trained path (board members highlighted), written atomically; a search under
    a latency range adds a second panel, the board against its predicted ms and the range (the cost the
    board's "cheaper" compared)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    st = model.strategy
    board = getattr(st, 'board', None)
    timed = getattr(model, 'latency_range', None) is not None and board is not None and len(board) \
        and all(e.latency is not None for e in board)
    fig, axes = plt.subplots(1, 2 if timed else 1, figsize=(11 if timed else 6, 4), dpi=120, squeeze=False)
    ax = axes[0, 0]
    if st.history:
        _, macs, acc = zip(*st.history)
        ax.scatter([m / 1e6 for m in macs], acc, s=6, alpha=0.35, color='tab:gray', label='trained paths')
    if board is not None and len(board):
        ax.scatter([e.macs / 1e6 for e in board], [e.acc for e in board], s=40, color='tab:red',
                   edgecolor='k', label=f'board (K={board.size})', zorder=3)
    lo, hi = model.macs_range
    ax.axvspan(lo / 1e6, hi / 1e6, color='tab:blue', alpha=0.08, label='MACs range')
    ax.set_xlabel('MACs (M)')
    ax.set_ylabel(getattr(st, 'history_label', 'top-1 on its batch (%)'))
    ax.set_title(f'{type(st).__name__}: {len(st.history)} paths')
    ax.legend(loc='lower right', fontsize=8)
    if timed:
        ax = axes[0, 1]
        ax.scatter([e.latency for e in board], [e.acc for e in board], s=40, color='tab:red', edgecolor='k',
                   label=f'board (K={board.size})', zorder=3)
        lo, hi = model.latency_range
        ax.axvspan(lo, hi, color='tab:green', alpha=0.1, label='latency range')
        ax.set_xlabel(f'predicted latency (ms, {model.latency_table.device}, {model.latency_table.threads} thread(s))')
        ax.set_title('the board by its cost')
        ax.legend(loc='lower right', fontsize=8)
    fig.tight_layout()
    atomic_write_bytes(path, png_bytes(fig))
    return path


__all__ = ['SupernetSearch', 'SearchDDP', 'SearchStateHook', 'SearchOutputsHook', 'load_search_checkpoint',
           'plot_board', 'search_model', 'unpack_batch']
