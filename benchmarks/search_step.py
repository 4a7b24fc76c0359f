#!/usr/bin/env python
"""Time of one search iteration: Cream (batched teacher selection: pooled BN statistics), Cream
(per-entry selection, each entry its own BN batch as in the authors' loop, computed as one forward
with per-entry BN statistics; the default) and SPOS, at equal batch, on iterations without a meta update.

    python benchmarks/search_step.py [--res 128] [--batch 16 64 128] [--iters 5] [--device cpu|cuda]

The paper's 0-600M supernet (4 layers per stage), a full board of 10 paths with 4 images each.
Prints milliseconds per step for each and the ratios the issue asks for (target: Cream <= 1.5x
SPOS), per batch size: a Cream step adds a gradient-free teacher forward of the batch and one
gradient-free student forward of the board's 40 stored images to the SPOS step, so the ratio
falls with the batch (the paper trains with 128 images per GPU).

With ``--config`` (e.g. ``configs/search/cream_imagenet_0-600.py``) it times what a search with that
config runs instead: the supernet, strategy settings and optimizer (``optim_wrapper``, paramwise
options included) of the config, each step through ``SupernetSearch.train_step`` as the Runner
calls it, and beside it the floor of a single-path step: the same path exported as a stand-alone
timm subnet (``Supernet.export_subnet``) and trained with an optimizer built from the same
``optim_wrapper`` config. Every variant trains the same few fixed paths, in turn::

    python benchmarks/search_step.py --config configs/search/cream_imagenet_0-600.py --res 64 --batch 32
    python benchmarks/search_step.py --config configs/search/cream_imagenet_0-600.py --res 224 --batch 16

prints ``standalone step``, ``spos step``, ``cream step`` (no meta update) and ``meta step`` (a Cream
step with the second-order matching-network update) in ms, then the ratios ``spos/standalone``,
``cream/spos`` and ``meta/spos``; beside them the two gradient-free passes a Cream step adds,
``teacher forward`` (the batch through the teacher path) and ``selection`` (the matcher's scores of
every board entry: the student path's forward of the board's 10 x 4 stored images, each entry its
own BN batch), the Cream floor they make with the SPOS step, and the selection's reference,
``plain forward (40 images)``: the same images through the same path in one plain forward, with the
ratio ``selection/plain forward`` (the target is <= 1.2). ``--res`` is only the input size: the supernet's depths come from
the config's MACs range at the config's resolution (the authors' rule). ``--amp`` (CUDA only) runs
every variant under mmengine's ``AmpOptimWrapper``; ``--channels-last`` converts weights and inputs.
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from mmengine.optim import OptimWrapper  # noqa: E402

import cream_det  # noqa: E402,F401
from cream_det.models.supernet import Supernet  # noqa: E402
from cream_det.search.strategies import STRATEGIES, StepContext  # noqa: E402
from cream_det.space import CREAM_SPACE  # noqa: E402


def make(kind, sn, board_from=None, **kw):
    st = STRATEGIES[kind](sn, macs_range=(0, 600e6), seed=0, **kw)
    if board_from is not None:
        st.board = board_from
    return st


def _step_timer(strategy, sn, x, y, device):
    """One timed training step of ``strategy``."""
    opt = OptimWrapper(torch.optim.SGD(sn.parameters(), lr=0.01, momentum=0.9))
    calls = iter(range(10 ** 9))

    def step() -> float:
        ctx = StepContext(sn, lambda a, c: sn(a, c), opt, x, y, step=10_000 + 2 * next(calls) + 1, epoch=99)
        if device == 'cuda':
            torch.cuda.synchronize()
        t = time.perf_counter()
        strategy.train_step(ctx)
        if device == 'cuda':
            torch.cuda.synchronize()
        return time.perf_counter() - t
    return step


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--config', help='time the steps of a search config (see above) instead of the default set')
    p.add_argument('--res', type=int, default=None, help='input resolution (default 128; --config: the config\'s)')
    p.add_argument('--batch', type=int, nargs='+', default=[16, 64, 128])
    p.add_argument('--iters', type=int, default=5)
    p.add_argument('--paths', type=int, default=3, help='--config: fixed paths the rounds cycle through')
    p.add_argument('--num-classes', type=int, default=None, help='--config: override the config\'s class count')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--amp', action='store_true', help="mixed precision (mmengine's AmpOptimWrapper; CUDA only)")
    p.add_argument('--channels-last', action='store_true', help='channels_last weights and inputs')
    p.add_argument('--threads', type=int, default=0, help='torch CPU threads (0: torch default)')
    p.add_argument('--clock', choices=['wall', 'process'], default='wall',
                   help="--config: 'process' times each step by this process's CPU time (with --threads 1 on a "
                        "shared CPU: the work done, not the wait for a core); 'wall' on a GPU")
    p.add_argument('--skip-cream', action='store_true', help='--config: time only the single-path variants')
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.amp and not args.device.startswith('cuda'):
        p.error('--amp needs --device cuda')
    if args.device.startswith('cuda') and not torch.cuda.is_available():
        p.error('--device cuda: no CUDA device is available here')
    torch.manual_seed(0)
    if args.config:
        return config_main(args)
    if args.amp or args.channels_last:
        p.error('--amp and --channels-last apply to --config runs')
    args.res = args.res or 128
    dev = torch.device(args.device)
    sn = Supernet(CREAM_SPACE, (4,) * 5, 1000, resolution=args.res).to(dev).train()
    print(f'device: {args.device}, resolution {args.res}, supernet depths (4,)*5, board 10 x 4 images; '
          f'variants interleaved step by step, median of {args.iters} steps after 1 warm-up round')
    summary = []
    for batch in args.batch:
        x = torch.randn(batch, 3, args.res, args.res, device=dev)
        y = torch.randint(0, 1000, (batch,), device=dev)
        cream = make('cream', sn, meta_interval=10 ** 9, selection='batched')   # no meta update in the timed steps
        while len(cream.board) < cream.board.size:              # a full board of 10 distinct paths
            code = cream.sample(dev)
            cream.board.consider(code, 50.0 + len(cream.board), 1, x[:4].cpu(),
                                 torch.softmax(torch.randn(4, 1000), 1), 0)
        naive = make('cream', sn, board_from=cream.board, meta_interval=10 ** 9, selection='per_entry')
        variants = {'spos step': _step_timer(make('spos', sn), sn, x, y, args.device),
                    'cream step (batched teacher selection)': _step_timer(cream, sn, x, y, args.device),
                    'cream step (per-entry teacher selection, per-entry BN statistics)':
                        _step_timer(naive, sn, x, y, args.device)}
        times = {k: [] for k in variants}
        for r in range(args.iters + 1):          # interleaved, so a change of machine load hits all alike
            for k, step in variants.items():
                dt = step()
                if r:
                    times[k].append(dt)
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f'-- batch {batch}')
        for k, v in med.items():
            print(f'{k}: {v * 1000:.1f} ms/step')
        t_spos, t_cream, t_naive = med.values()
        summary.append((batch, t_cream / t_spos, t_naive / t_cream))
    for batch, r, rn in summary:
        print(f'batch {batch}: ratio cream/spos: {r:.2f}  ratio cream-per-entry/cream-batched: {rn:.2f}')

# ---- --config: the config's search step against the stand-alone subnet of the same path ------------
def config_main(args: argparse.Namespace) -> None:
    import torch.nn.functional as F
    from mmengine.config import Config
    from mmengine.logging import MessageHub
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import MODELS

    from cream_det.search.strategies import build_strategy

    from mmengine.logging import MMLogger
    MMLogger.get_instance('search_step', log_level='WARNING')     # no per-parameter option lines
    cfg = Config.fromfile(args.config)
    mcfg = cfg.model.to_dict() if hasattr(cfg.model, 'to_dict') else dict(cfg.model)
    if args.num_classes:
        mcfg['num_classes'] = args.num_classes
    res = args.res or mcfg.get('resolution', 224)
    dev = torch.device(args.device)
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    model = MODELS.build(mcfg).to(dev, memory_format=fmt).train()
    sn = model.supernet
    scfg = dict(mcfg['strategy'])
    if scfg.get('type') != 'cream':
        raise SystemExit(f'--config: the strategy of {args.config} is {scfg.get("type")!r}; give a Cream config '
                         '(its SPOS step is timed beside it)')
    ocfg = cfg.optim_wrapper.to_dict() if hasattr(cfg.optim_wrapper, 'to_dict') else dict(cfg.optim_wrapper)
    if args.amp:
        ocfg.update(type='AmpOptimWrapper', loss_scale='dynamic')
    n_cls = sn.num_classes
    meta_interval = int(scfg.get('meta_interval', 200))
    hub = MessageHub.get_current_instance()
    hub.update_info('epoch', 10 ** 6)               # past any warm-up
    ow = build_optim_wrapper(model, ocfg)
    default_ctor = ocfg.get('constructor', 'DefaultOptimWrapperConstructor') != 'DefaultOptimWrapperConstructor'
    # the same step with mmengine's default constructor (one group per parameter), for comparison
    ow_default = build_optim_wrapper(model, {**ocfg, 'constructor': 'DefaultOptimWrapperConstructor'}) \
        if default_ctor else None
    codes = [tuple(int(c) for c in code) for code in model.strategy.sampler.sample_codes(args.paths)]
    print(f'config: {args.config}, device {args.device}{" (AMP)" if args.amp else ""}'
          f'{", channels_last" if args.channels_last else ""}, {torch.get_num_threads()} threads, resolution {res}, '
          f'{n_cls} classes, supernet depths {sn.depths} ({sum(p.numel() for p in sn.parameters()) / 1e6:.1f}M params), '
          f'board {scfg.get("board_size", 10)}, {args.paths} fixed paths in turn; variants interleaved step by '
          f'step, median of {args.iters} rounds after 1 warm-up round per path, {args.clock} clock')
    sync = torch.cuda.synchronize if dev.type == 'cuda' else (lambda: None)
    summary = []
    for batch in args.batch:
        x = torch.randn(batch, 3, res, res, device=dev).contiguous(memory_format=fmt)
        y = torch.randint(0, n_cls, (batch,), device=dev)
        current = {'code': codes[0]}
        spos = build_strategy(dict(type='spos'), sn, model.macs_range, 0)
        cream = build_strategy(scfg, sn, model.macs_range, 0)
        for st in (spos, cream):
            st.sample = lambda device, _c=current: _c['code']     # every variant trains the round's path
        filler = build_strategy(dict(type='spos'), sn, model.macs_range, 1)
        while len(cream.board) < cream.board.size:                # a full board of distinct paths
            code = filler.sample(dev)
            cream.board.consider(code, 50.0 + len(cream.board), 1, x[:cream.slice_size].cpu(),
                                 torch.softmax(torch.randn(cream.slice_size, n_cls), 1), 0)
        alone = {}
        for code in codes:
            net = sn.export_subnet(code).to(dev, memory_format=fmt)
            alone[code] = (net, build_optim_wrapper(net, ocfg),
                           build_optim_wrapper(net, {**ocfg, 'constructor': 'DefaultOptimWrapperConstructor'}))

        def standalone(which: int = 1):
            def step() -> None:
                net, owa = alone[current['code']][0], alone[current['code']][which]
                with owa.optim_context(net):
                    loss = F.cross_entropy(net(x), y)
                owa.update_params(loss)
            return step

        def search_step(strategy, it: int, wrapper=ow):
            def step() -> None:
                model.strategy = strategy
                hub.update_info('iter', it)
                model.train_step((x, y), wrapper)
            return step

        def teacher_forward() -> None:          # what a Cream step adds: the teacher's logits of the batch
            with torch.no_grad():
                sn(x, cream.board[0].code)

        def selection() -> None:                # ... and the matcher's scores of every board entry
            model.strategy = cream
            ctx = StepContext(sn, lambda a, c: sn(a, c), ow, x, y, step=1, epoch=10 ** 6)
            cream._choose_teacher(ctx, current['code'], with_grad=cream.matcher_grad in ('both', 'student'))

        board_images = torch.cat([e.images for e in cream.board]).to(dev)
        plain_name = f'plain forward ({len(board_images)} images)'

        def plain_forward() -> None:            # the selection's reference: its images, one plain forward
            with torch.no_grad():
                sn(board_images, current['code'])

        variants = {'standalone step': standalone(), 'spos step': search_step(spos, 1)}
        if not args.skip_cream:
            variants['cream step'] = search_step(cream, meta_interval * 1000 + 1)    # no meta update
            variants['meta step'] = search_step(cream, meta_interval * 1000)        # with the meta update
            variants['teacher forward'] = teacher_forward
            variants['selection'] = selection
            variants[plain_name] = plain_forward
        if ow_default is not None:
            variants['standalone step (default constructor)'] = standalone(2)
            variants['spos step (default constructor)'] = search_step(spos, 1, ow_default)
        clock = time.process_time if args.clock == 'process' else time.perf_counter
        times = {k: [] for k in variants}
        names = list(variants)
        for r in range(len(codes) + args.iters):
            current['code'] = codes[r % len(codes)]
            for i in range(len(names)):          # the order rotates: none always runs after the meta step
                k = names[(i + r) % len(names)]
                step = variants[k]
                sync()
                t = clock()
                step()
                sync()
                if r >= len(codes):
                    times[k].append(clock() - t)
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f'-- batch {batch}, {res} px')
        for k, v in med.items():
            print(f'{k}: {v * 1000:.1f} ms/step')
        summary.append((batch, med))
    for batch, med in summary:
        s = med['spos step']
        line = f'batch {batch} {res}px: ratio spos/standalone: {s / med["standalone step"]:.3f}'
        if 'cream step' in med:
            line += f'  ratio cream/spos: {med["cream step"] / s:.2f}  ratio meta/spos: {med["meta step"] / s:.2f}'
        print(line)
        if 'cream step' in med:
            # the same mathematics cannot cost less than a SPOS step plus the two gradient-free passes it adds
            floor = s + med['teacher forward'] + med['selection']
            print(f'batch {batch} {res}px: cream floor (spos + teacher forward + selection): {floor * 1000:.1f} ms/step'
                  f'  ratio floor/spos: {floor / s:.2f}  ratio cream/floor: {med["cream step"] / floor:.2f}')
            print(f'batch {batch} {res}px: selection {med["selection"] * 1000:.1f} ms, {plain_name} '
                  f'{med[plain_name] * 1000:.1f} ms  ratio selection/plain forward: '
                  f'{med["selection"] / med[plain_name]:.2f}')
        if 'spos step (default constructor)' in med:
            d = med['spos step (default constructor)']
            print(f'batch {batch} {res}px, default constructor: ratio spos/standalone: '
                  f'{d / med["standalone step (default constructor)"]:.3f}  '
                  f'ratio spos/spos(default constructor): {s / d:.3f}')


if __name__ == '__main__':
    main()
