"""Measuring a :class:`~cream_det.models.latency.LatencyTable` on this device, and whole archs to check it.

Every timed module is the real subnet's: a slot's block is built from the arch's own block string by
timm's builder with the subnet's arguments (:func:`cream_det.models.subnet.build_block`), and the
fixed parts (stem, first block, last 1x1 conv, head) are sliced from a built subnet. Each is timed
on the input the real net gives it — ``(batch, width entering the slot, height, width)``, where a
stage's first layer takes the previous stage's width and map size (its stride-2 input) and the
later layers the stage's own — in eval mode, after ``warmup`` runs, as the median of ``repeats``.
Slots with the same block and input (a stage's layers after its first) are timed once.

``mode='backbone'`` times a detector's backbone instead: the parts are sliced from the timm
features-only net that :class:`~cream_det.det.backbone.CreamBackbone` wraps (stem, first block, the
slots, last 1x1 conv; no head), on an input of any ``(height, width)``.

Runtimes: ``torch`` (CPU or CUDA, synchronised around each run) and ``ort`` (onnxruntime's CPU
provider on the module's ONNX export). ``threads`` sets torch's intra-op threads (restored after)
or the onnxruntime session's.

``anchor=True`` (a table) or ``anchor_ms`` (an arch, with the table's figure) times every module in pairs
with a fixed anchor module (:func:`anchor_module`), one run of each in turn, and keeps the median ratio of
the two: a machine whose speed changes while it measures (a shared VM: this project's 2-core one ran one
net at 2.1 ms and at 2.9 ms within seconds, while its ratio to another net stayed within 2 %;
docs/latency.md) then prices every entry, and every arch measured later against the same anchor, at
one speed: the table's ``anchor_ms``, the median of the anchor's own runs while the table was measured.
"""
from __future__ import annotations

import contextlib
import datetime
import functools
import io
import platform
import sys
import time
import warnings
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn as nn

from ..errors import ConfigError
from ..space import Arch, SearchSpace
from .latency import MODE_PARTS, MODES, LatencyTable, input_hw
from .subnet import build_block, build_subnet, feature_channels, model_kwargs

DEVICES, RUNTIMES = ('cpu', 'cuda'), ('torch', 'ort')
#: ``progress(done, total, what)``, called after each timed module
Progress = Callable[[int, int, str], None]


def check_target(device: str, runtime: str, threads: int, batch: int, mode: str = 'classifier') -> None:
    """One clear error for a device/runtime this machine cannot time on, or a bad count or mode."""
    if mode not in MODES:
        raise ConfigError(f'mode {mode!r}: one of {", ".join(MODES)}')
    if device not in DEVICES:
        raise ConfigError(f'device {device!r}: one of {", ".join(DEVICES)}')
    if runtime not in RUNTIMES:
        raise ConfigError(f'runtime {runtime!r}: one of {", ".join(RUNTIMES)}')
    if device == 'cuda' and not torch.cuda.is_available():
        raise ConfigError('device cuda: torch sees no CUDA GPU here; measure with --device cpu or on the GPU machine')
    if runtime == 'ort':
        if device != 'cpu':
            raise ConfigError('runtime ort times onnxruntime\'s CPU provider: use it with --device cpu')
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            raise ConfigError('runtime ort needs onnxruntime: pip install -e .[deploy]') from None
    if threads < 1 or batch < 1:
        raise ConfigError(f'threads ({threads}) and batch ({batch}) must be >= 1')


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _onnx_session(module: nn.Module, x: torch.Tensor, threads: int) -> Callable[[], Any]:
    import onnxruntime as ort
    buf = io.BytesIO()
    with warnings.catch_warnings():         # the TorchScript exporter's deprecation notice, once per module
        warnings.simplefilter('ignore', DeprecationWarning)
        torch.onnx.export(module, (x,), buf, input_names=['input'], opset_version=17, dynamo=False)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    sess = ort.InferenceSession(buf.getvalue(), opts, providers=['CPUExecutionProvider'])
    feed = {'input': x.numpy()}
    return lambda: sess.run(None, feed)


def _runner(module: nn.Module, x: torch.Tensor, runtime: str, threads: int) -> Callable[[], Any]:
    return _onnx_session(module, x, threads) if runtime == 'ort' else (lambda: module(x))


def _timed_runs(modules: Sequence[nn.Module], shapes: Sequence[Sequence[int]], *, device: str, runtime: str,
                threads: int, warmup: int, repeats: int) -> np.ndarray:
    """``(repeats, len(modules))`` seconds: each repeat runs every module once, in turn (so runs of one repeat
    see the machine at one speed), after ``warmup`` such rounds; eval mode, synchronised on CUDA."""
    cuda = device == 'cuda'
    inputs = [torch.randn(tuple(shape), generator=torch.Generator().manual_seed(0)).to(device) for shape in shapes]
    with torch_threads(threads), torch.inference_mode():
        runs = [_runner(m.eval().to(device), x, runtime, threads) for m, x in zip(modules, inputs)]
        for _ in range(warmup):
            for run in runs:
                run()
        times = np.empty((repeats, len(runs)))
        for i in range(repeats):
            for j, run in enumerate(runs):
                if cuda:
                    torch.cuda.synchronize()
                t = time.perf_counter()
                run()
                if cuda:
                    torch.cuda.synchronize()
                times[i, j] = time.perf_counter() - t
    return times


def time_module(module: nn.Module, shape: Sequence[int], *, device: str = 'cpu', runtime: str = 'torch',
                threads: int = 1, warmup: int = 10, repeats: int = 30) -> float:
    """Median milliseconds of one forward of ``module`` (eval mode) on a ``shape`` input."""
    times = _timed_runs([module], [shape], device=device, runtime=runtime, threads=threads, warmup=warmup,
                        repeats=repeats)
    return float(np.median(times[:, 0]) * 1e3)


def time_anchored(module: nn.Module, shape: Sequence[int], anchor: nn.Module, anchor_shape: Sequence[int], *,
                  device: str = 'cpu', runtime: str = 'torch', threads: int = 1, warmup: int = 10,
                  repeats: int = 30) -> tuple[float, np.ndarray]:
    """``(ratio, anchor_ms)``: the median over repeats of the module's time over the anchor's in the same
    repeat (the two run back to back), and the anchor's ms of each repeat.

    Each repeat runs the anchor twice and then the module twice, and times each one's second run: a run
    right after another of the same module finds its caches as a plain timing does, whatever ran before.
    (Timed right after a whole 64 px net, the anchor took 0.49-0.54 ms against 0.29-0.33 alone, which
    priced whole nets up to 28 % under their plain time; docs/latency.md.)"""
    times = _timed_runs([anchor, anchor, module, module], [anchor_shape, anchor_shape, shape, shape], device=device,
                        runtime=runtime, threads=threads, warmup=warmup, repeats=repeats)
    return float(np.median(times[:, 3] / times[:, 1])), times[:, 1] * 1e3


def anchor_module(space: SearchSpace) -> nn.Module:
    """The anchor of anchored timing: the stem and first block of ``space``'s reference net, the same module
    (up to its random weights, which do not change its time) in every process that builds it."""
    net = build_subnet(reference_arch(space, space.resolution_multiple, 1000))
    return nn.Sequential(net.conv_stem, net.bn1, net.blocks[0]).eval()


@functools.lru_cache(maxsize=4)
def _shared_anchor(space: SearchSpace) -> nn.Module:
    """One anchor per space per process for :func:`measure_arch`: building it costs about 0.3 s, which a
    benchmark of 80 archs would pay 80 times; its weights never change (eval, inference mode)."""
    return anchor_module(space)


def reference_arch(space: SearchSpace, resolution: int, num_classes: int = 1000) -> Arch:
    """The arch of ``space`` with every stage at its max depth running the first op: the net whose layers
    show every slot's input and whose fixed parts are timed."""
    return Arch(tuple((space.ops[0],) * st.max_depth for st in space.stages), resolution, num_classes, space)


def nominal_resolution(space: SearchSpace, size: 'int | Sequence[int]') -> int:
    """The resolution an :class:`Arch` timed at ``size`` is labelled with: the side of a square size, else the
    space's smallest (an arch's resolution is square and does not change its network, only its label)."""
    h, w = input_hw(size)
    return h if h == w else space.resolution_multiple


class _Head(nn.Module):
    """The subnet's own head (pool, 1x1 conv with bias, activation, classifier) as a module."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.forward_head(x)


def backbone_net(arch: Arch) -> nn.Module:
    """The features-only timm net of ``arch`` that ``CreamBackbone`` wraps, every feature level out (which
    levels are returned does not change what runs: timm's forward runs every block)."""
    return build_subnet(arch, features_only=True, out_indices=tuple(range(len(feature_channels(arch))))).eval()


class RealNet:
    """The reference subnet, built once, with the input shape each of its parts really gets.

    The shapes come from forward pre-hooks on one forward of the built net, not from the spec's
    arithmetic, so a space whose first block widens the stem (``first_block`` ``c`` differs from
    ``stem_channels``) or any other builder detail is timed on what the network runs.
    ``resolution`` is an int (square) or ``(height, width)``; in ``backbone`` mode the net is timm's
    features-only one (what ``CreamBackbone`` runs: every block, whatever its out_indices; no head).
    """

    def __init__(self, space: SearchSpace, resolution: 'int | Sequence[int]', batch: int, num_classes: int = 1000,
                 mode: str = 'classifier') -> None:
        self.space, self.mode = space, mode
        self.arch = reference_arch(space, nominal_resolution(space, resolution), num_classes)
        backbone = mode == 'backbone'
        self.net = net = backbone_net(self.arch) if backbone else build_subnet(self.arch).eval()
        stem = nn.Sequential(net.conv_stem, net.bn1, net.act1) if backbone else nn.Sequential(net.conv_stem, net.bn1)
        fixed = {'stem': stem, 'first_block': net.blocks[0], 'last_conv': net.blocks[-1], 'head': _Head(net)}
        self.fixed: dict[str, nn.Module] = {k: fixed[k] for k in MODE_PARTS[mode]}
        parts = [net.blocks[0], net.blocks[-1]] + [b for stage in net.blocks[1:-1] for b in stage]
        seen: dict[int, tuple[int, ...]] = {}
        hooks = [m.register_forward_pre_hook(lambda m, args: seen.__setitem__(id(m), tuple(args[0].shape)))
                 for m in parts]
        x = torch.zeros(batch, 3, *input_hw(resolution))
        with torch.inference_mode():
            feats = net(x)[-1] if backbone else net.forward_features(x)
        for h in hooks:
            h.remove()
        inputs = {'stem': tuple(x.shape), 'first_block': seen[id(net.blocks[0])],
                  'last_conv': seen[id(net.blocks[-1])], 'head': tuple(feats.shape)}
        self.fixed_inputs = {k: inputs[k] for k in MODE_PARTS[mode]}
        #: the input of every layer slot, in code order
        self.slot_inputs = [seen[id(b)] for stage in net.blocks[1:-1] for b in stage]

    def slot_block(self, slot: int, op: Any) -> nn.Module:
        """The block the real subnet runs at layer ``slot`` (stages at max depth, code order) with ``op``."""
        stage, index = slot_positions(self.space)[slot]
        return build_block(model_kwargs(self.arch), self.arch.block_string(stage, index, op),
                           self.slot_inputs[slot][1])[0]


def slot_positions(space: SearchSpace) -> list[tuple[int, int]]:
    """``(stage, layer index)`` of every layer slot, stages at their max depth (the codes' order)."""
    return [(s, i) for s, st in enumerate(space.stages) for i in range(st.max_depth)]


def device_name(device: str) -> str:
    if device == 'cuda':
        return torch.cuda.get_device_name()
    try:
        for line in open('/proc/cpuinfo', encoding='utf-8'):
            if line.startswith('model name'):
                return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def library_versions(runtime: str) -> dict[str, str]:
    import timm

    from ..version import __version__
    v = {'python': platform.python_version(), 'torch': torch.__version__, 'timm': timm.__version__,
         'numpy': np.__version__, 'cream_det': __version__}
    if runtime == 'ort':
        import onnxruntime
        v['onnxruntime'] = onnxruntime.__version__
    return v


def measure_table(space: SearchSpace, resolution: 'int | Sequence[int]', *, batch: int = 1, num_classes: int = 1000,
                  device: str = 'cpu', runtime: str = 'torch', threads: int = 1, warmup: int = 10,
                  repeats: int = 30, progress: Progress | None = None, mode: str = 'classifier',
                  anchor: bool = False) -> LatencyTable:
    """Time every (slot, op) block and the fixed parts of ``space`` on this device; returns the table.

    ``resolution``: an int (square) or ``(height, width)``; ``mode``: ``classifier`` (the whole net) or
    ``backbone`` (a detector's backbone: no head); ``anchor``: time each module against
    :func:`anchor_module` (the module docstring says why) and record the anchor's ms in the table."""
    check_target(device, runtime, threads, batch, mode)
    real = RealNet(space, resolution, batch, num_classes, mode)
    shapes = real.slot_inputs
    jobs: dict[tuple, list[tuple[int, int]]] = {}          # (block, input) -> the (slot, op) entries it fills
    for slot, ((stage, index), shape) in enumerate(zip(slot_positions(space), shapes)):
        for j in range(len(space.ops)):             # a stage's layers after its first are one block and input
            jobs.setdefault((stage, min(index, 1), j, shape), []).append((slot, j))
    total, done = len(jobs) + len(real.fixed), 0
    timing = dict(device=device, runtime=runtime, threads=threads, warmup=warmup, repeats=repeats)
    ref = anchor_module(space) if anchor else None
    ref_shape = (batch, 3, *input_hw(resolution))
    anchor_runs: list[np.ndarray] = []  # anchored: every ratio is priced at the median of these at the end

    def timed(module: nn.Module, shape: Sequence[int]) -> float:
        if ref is None:
            return time_module(module, shape, **timing)
        ratio, runs = time_anchored(module, shape, ref, ref_shape, **timing)
        anchor_runs.append(runs)
        return ratio

    fixed_ms = {}
    for name, module in real.fixed.items():
        fixed_ms[name] = timed(module, real.fixed_inputs[name])
        done += 1
        if progress:
            progress(done, total, name)
    ms = np.zeros((space.max_layers, len(space.ops) + 1))
    for entries in jobs.values():
        slot, j = entries[0]
        t = timed(real.slot_block(slot, space.ops[j]), shapes[slot])
        for slot_, j_ in entries:
            ms[slot_, j_] = t
        done += 1
        if progress:
            progress(done, total, f'slot {slot + 1} {space.ops[j].name}')
    anchor_ms = None
    if ref is not None:
        anchor_ms = float(np.median(np.concatenate(anchor_runs)))
        ms *= anchor_ms
        fixed_ms = {k: v * anchor_ms for k, v in fixed_ms.items()}
    return LatencyTable(space=space, resolution=resolution, batch=batch, num_classes=num_classes, threads=threads,
                        device=device, device_name=device_name(device), runtime=runtime,
                        versions=library_versions(runtime), warmup=warmup, repeats=repeats, fixed=fixed_ms, ms=ms,
                        input_shapes=tuple(shapes), mode=mode, anchor_ms=anchor_ms,
                        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'))


def measure_arch(arch: Arch, *, batch: int = 1, device: str = 'cpu', runtime: str = 'torch', threads: int = 1,
                 warmup: int = 5, repeats: int = 20, mode: str = 'classifier',
                 input_size: 'int | Sequence[int] | None' = None, anchor_ms: float | None = None) -> float:
    """Median ms of the whole timm subnet of ``arch`` at its resolution (or ``input_size``), or with ``mode``
    ``backbone`` of the features-only net ``CreamBackbone`` runs (the figure a table of that mode predicts).

    With ``anchor_ms`` (an anchored table's), the net is timed against :func:`anchor_module` and priced at
    that figure: the ms it takes at the speed the table was measured at, which a machine whose speed
    drifts does not give by timing the net alone."""
    check_target(device, runtime, threads, batch, mode)
    net = backbone_net(arch) if mode == 'backbone' else build_subnet(arch)
    shape = (batch, 3, *input_hw(arch.resolution if input_size is None else input_size))
    timing = dict(device=device, runtime=runtime, threads=threads, warmup=warmup, repeats=repeats)
    if anchor_ms is None:
        return time_module(net, shape, **timing)
    if not anchor_ms > 0:
        raise ConfigError(f'anchor_ms {anchor_ms!r}: the anchor\'s ms of an anchored table, > 0')
    ratio, _ = time_anchored(net, shape, _shared_anchor(arch.space), shape, **timing)
    return ratio * float(anchor_ms)


def sample_archs(space: SearchSpace, resolution: int, n: int, *, num_classes: int = 1000, seed: int = 0,
                 exclude: Sequence[Arch] = (), depths: Sequence[int] | None = None) -> list[Arch]:
    """``n`` distinct archs drawn uniformly over the space (each stage's depth, then each layer's op; with
    ``depths``, at those per-stage depths: a correction is fitted where the search's paths are), none of
    them in ``exclude`` (a held-out set stays held out)."""
    from ..space import ArchSampler
    sampler = ArchSampler(space, resolution, num_classes, seed=seed, depths=None if depths is None else tuple(depths))
    seen, out = {a.hash for a in exclude}, []
    for _ in range(1000):
        for code in sampler.sample_codes(max(n, 16)):
            arch = Arch.decode(code, space, resolution, num_classes)
            if arch.hash not in seen:
                seen.add(arch.hash)
                out.append(arch)
                if len(out) == n:
                    return out
    raise ConfigError(f'space {space.name} has fewer than {n} distinct archs outside the {len(exclude)} excluded')


def measure_archs(archs: Sequence[Arch], *, progress: Progress | None = None, **timing: Any) -> list[float]:
    """:func:`measure_arch` of each arch, in order (``timing``: batch, device, runtime, threads, warmup, repeats,
    mode, input_size)."""
    out = []
    for i, arch in enumerate(archs):
        out.append(measure_arch(arch, **timing))
        if progress:
            progress(i + 1, len(archs), f'arch {arch.hash}: {out[-1]:.2f} ms')
    return out


def calibrate(table: LatencyTable, archs: Sequence[Arch], *, kind: str = 'global', progress: Progress | None = None,
              warmup: int = 5, repeats: int = 20) -> tuple[LatencyTable, list[float]]:
    """``table`` with a linear correction (``kind``: global or per stage) fitted on ``archs`` measured whole
    with the table's own settings (device, runtime, threads, batch, mode, input size); returns it with the
    measurements."""
    from .latency import fit_correction
    measured = measure_archs(archs, progress=progress, **table_timing(table, warmup, repeats))
    codes = np.stack([a.encode() for a in archs])
    return table.with_correction(fit_correction(table, codes, measured, kind)), measured


def table_timing(table: LatencyTable, warmup: int, repeats: int) -> dict[str, Any]:
    """:func:`measure_arch`'s settings that time archs the way ``table`` was measured."""
    return dict(batch=table.batch, device=table.device, runtime=table.runtime, threads=table.threads,
                mode=table.mode, input_size=table.input_size, warmup=warmup, repeats=repeats,
                anchor_ms=table.anchor_ms)


def stderr_progress(every: int = 10) -> Progress:
    """timm-style progress: a line to stderr every ``every`` modules and at the end."""
    t0 = time.perf_counter()

    def report(done: int, total: int, what: str) -> None:
        if done % every == 0 or done == total:
            print(f'[{done}/{total}] {what} ({time.perf_counter() - t0:.1f} s)', file=sys.stderr, flush=True)
    return report


__all__ = ['DEVICES', 'RUNTIMES', 'RealNet', 'anchor_module', 'backbone_net', 'calibrate', 'check_target',
           'device_name', 'library_versions', 'measure_arch', 'measure_archs', 'measure_table', 'nominal_resolution',
           'reference_arch', 'sample_archs', 'slot_positions', 'stderr_progress', 'table_timing', 'time_anchored',
           'time_module', 'torch_threads']
