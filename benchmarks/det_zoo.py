#!/usr/bin/env python
"""The model-zoo table: each published Cream net in each detector, beside mmdet's MobileNetV2 and
ResNet-18 RetinaNet, measured the same way in the same run.

    python benchmarks/det_zoo.py [--nets cream_14 cream_43 ...]
                                 [--detectors retinanet fcos faster_rcnn retinanet_crop896]
                                 [--runs 3] [--threads 1] [--json zoo.json]

Per model:
- backbone MACs: the Cream net's analytic MACs at its own classification resolution (the paper's
  figure: cream_14 is a 64 px net, cream_43 96 px, ...);
- detector FLOPs and params: **mmdet's own** ``tools/analysis_tools/get_flops.py``, run unchanged on
  the config, on one 1333x800 image (padded to 1344x800; ``retinanet_crop896``, the efficient-backbone
  recipe, resizes it to 896x538, padded to 896x544, as its test pipeline does), as mmdet's model zoo reports them
  (mmengine's counter counts one multiply-add as one FLOP). It prints 3 significant digits, so the
  same counter is also called here exactly as get_flops.py calls it, unrounded, and checked to
  round to the printed value; the backbone's share comes from that counter on the backbone alone;
- CPU time per image: the median of ``--runs`` ``model.test_step`` calls (preprocessing of the
  loaded image, forward, box decoding, NMS) at the same size, after one warm-up, ``--threads``
  torch threads, each model in its own process; ``--runs 0`` leaves it out (FLOPs and params only);
- backbone CPU time: the backbone alone (``model.backbone``) on the preprocessed, padded input the
  detector's own backbone gets (1344x800; 896x544 for the crop-896 recipe), timed the same way and
  in the same rounds, each round one ``test_step`` then one backbone forward: the figure a latency
  table measured with ``tools/latency_table.py --mode backbone --input-size 800 1344`` predicts.

Prints ``name: value unit`` lines, then the Markdown table that README's model zoo shows.
On a shared machine, ``--retime JSON`` re-measures the CPU column with every model in one process,
interleaved round by round, so that load changes do not favour whichever model ran when it was quiet.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NETS = ('cream_14', 'cream_43', 'cream_114', 'cream_287', 'cream_481', 'cream_604')
DETECTORS = {
    'retinanet': 'configs/retinanet/retinanet_cream-{n}_fpn_1x_coco.py',
    'fcos': 'configs/fcos/fcos_cream-{n}_fpn_gn-head_1x_coco.py',
    'faster_rcnn': 'configs/faster_rcnn/faster-rcnn_cream-{n}_fpn_1x_coco.py',
    # the efficient-backbone recipe (mmdet's EfficientNet-B3 RetinaNet): RetinaSepBNHead, tested at 896 px
    'retinanet_crop896': 'configs/retinanet/retinanet_cream-{n}_fpn_8xb4-crop896-1x_coco.py',
}
# mmdet ships RetinaNet R-18; its MobileNetV2 RetinaNet is mmdet's R-50 config with mmdet's
# MobileNetV2 backbone (strides 8/16/32, widths 32/96/320), as in benchmarks/retinanet_iter.py
BASELINES = {
    'retinanet_resnet18': "_base_ = 'mmdet::retinanet/retinanet_r18_fpn_1x_coco.py'\n",
    'retinanet_mobilenetv2': (
        "_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'\n"
        "model = dict(backbone=dict(_delete_=True, type='MobileNetV2', out_indices=(2, 4, 6)),\n"
        "             neck=dict(in_channels=[32, 96, 320], start_level=0))\n"),
}
W, H = 1333, 800
# what each recipe's test pipeline makes of the 1333x800 image, padded to 32, as get_flops.py prints it
# (height, width): the 1x recipes keep 1333x800, the crop-896 one resizes to 896x538
INPUT_SHAPE = {'retinanet_crop896': (544, 896)}


def make_image_set(root: Path) -> Path:
    """One 1333x800 image in a COCO annotation file (mmdet's 80 classes), for get_flops and timing."""
    import numpy as np
    from PIL import Image
    from mmdet.datasets import CocoDataset
    rng = np.random.default_rng(0)
    img = (rng.random((H, W, 3)) * 255).astype('uint8')
    Image.fromarray(img).save(root / 'img.jpg', quality=95)
    cats = [{'id': i + 1, 'name': c} for i, c in enumerate(CocoDataset.METAINFO['classes'])]
    ann = {'images': [{'id': 1, 'file_name': 'img.jpg', 'width': W, 'height': H}],
           'annotations': [{'id': 1, 'image_id': 1, 'category_id': 1, 'bbox': [100, 100, 300, 200],
                            'area': 60000, 'iscrowd': 0}],
           'categories': cats}
    (root / 'ann.json').write_text(json.dumps(ann))
    return root


def data_options(root: Path) -> list[str]:
    return [f'val_dataloader.dataset.data_root={root}/', 'val_dataloader.dataset.ann_file=ann.json',
            'val_dataloader.dataset.data_prefix.img=']


def mmdet_get_flops(cfg: Path, root: Path, expected: tuple[int, int] = (H, 1344)) -> tuple[str, str]:
    """FLOPs and params as mmdet's own get_flops.py prints them ('161G', '10.7M'), checking that it
    profiled the input (height, width) that the config's test pipeline makes of the image."""
    import mmdet
    tool = Path(mmdet.__file__).parent / '.mim/tools/analysis_tools/get_flops.py'
    r = subprocess.run([sys.executable, str(tool), str(cfg), '--num-images', '1', '--cfg-options',
                        *data_options(root)], capture_output=True, text=True, env=_env())
    if r.returncode:
        raise RuntimeError(f'get_flops.py {cfg}: {r.stderr[-2000:]}')
    shape = re.search(r'Input shape: (\(.*?\))', r.stdout).group(1)
    assert shape == str(expected), f'{cfg}: get_flops profiled {shape}, not {expected}'
    return re.search(r'Flops: (\S+)', r.stdout).group(1), re.search(r'Params: (\S+)', r.stdout).group(1)


def time_one(cfg: Path, root: Path, runs: int, threads: int) -> dict:
    """Median seconds of test_step on the 1333x800 image (run in its own process), and the unrounded
    counts of mmengine's counter called as get_flops.py calls it (which prints 3 significant
    digits: too coarse to tell a 14M-MAC backbone from a 114M one inside a detector)."""
    from functools import partial

    import torch
    from mmengine.analysis import get_model_complexity_info
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner
    torch.set_num_threads(threads)
    c = Config.fromfile(str(cfg))
    c.merge_from_dict(dict(kv.split('=', 1) for kv in data_options(root)))
    c.val_dataloader.batch_size = 1
    c.val_dataloader.num_workers = 0
    c.val_dataloader.persistent_workers = False
    init_default_scope(c.get('default_scope', 'mmdet'))
    torch.manual_seed(0)
    model = MODELS.build(c.model).eval()
    batch = next(iter(Runner.build_dataloader(c.val_dataloader)))
    data = model.data_preprocessor(batch)
    forward = model.forward
    model.forward = partial(forward, data_samples=data['data_samples'])
    counts = get_model_complexity_info(model, None, inputs=data['inputs'], show_table=False, show_arch=False)
    model.forward = forward
    bb = get_model_complexity_info(model.backbone, None, inputs=data['inputs'], show_table=False, show_arch=False)
    times = timed_rounds({'model': (model, batch, data['inputs'])}, runs)
    return {'sec_per_img': statistics.median(times['test_step']['model']) if runs else None,
            'times': times['test_step']['model'], 'backbone_times': times['backbone']['model'],
            'flops': counts['flops'], 'params': counts['params'], 'backbone_flops': bb['flops'],
            'input': list(data['inputs'].shape)}


def timed_rounds(built: dict, runs: int) -> dict:
    """Seconds of ``model.test_step(batch)`` and of ``model.backbone(inputs)`` for every ``name: (model, batch,
    inputs)``: one warm-up of each, then ``runs`` rounds that time each model's test_step and then its backbone,
    model after model, so a change of load falls on every model and on both figures alike."""
    import torch
    times: dict = {'test_step': {name: [] for name in built}, 'backbone': {name: [] for name in built}}
    with torch.no_grad():
        if runs:
            for model, batch, inputs in built.values():
                model.test_step(batch)
                model.backbone(inputs)
        for _ in range(runs):
            for name, (model, batch, inputs) in built.items():
                for what, run in (('test_step', lambda: model.test_step(batch)),
                                  ('backbone', lambda: model.backbone(inputs))):
                    t = time.perf_counter()
                    run()
                    times[what][name].append(time.perf_counter() - t)
    return times



def time_all(models: list[tuple[str, str]], root: Path, runs: int, threads: int) -> dict:
    """Interleaved CPU timing: every model built once in this process, one warm-up each, then
    ``runs`` rounds that time each model once in turn (its test_step, then its backbone on the
    preprocessed input), so a change of load on a shared machine falls on every model alike instead
    of on whichever ran then. Returns :func:`timed_rounds`' seconds and each backbone's input shape."""
    import torch
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner
    torch.set_num_threads(threads)
    built = {}
    for name, cfg in models:
        c = Config.fromfile(cfg)
        c.merge_from_dict(dict(kv.split('=', 1) for kv in data_options(root)))
        c.val_dataloader.update(batch_size=1, num_workers=0, persistent_workers=False)
        init_default_scope(c.get('default_scope', 'mmdet'))
        torch.manual_seed(0)
        model = MODELS.build(c.model).eval()
        batch = next(iter(Runner.build_dataloader(c.val_dataloader)))
        with torch.no_grad():
            built[name] = (model, batch, model.data_preprocessor(batch)['inputs'])
    times = timed_rounds(built, runs)
    times['input'] = {name: list(inputs.shape) for name, (_, _, inputs) in built.items()}
    return times

def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--nets', nargs='+', default=list(NETS), choices=NETS)
    p.add_argument('--detectors', nargs='+', default=list(DETECTORS), choices=list(DETECTORS))
    p.add_argument('--runs', type=int, default=3, help='timed runs per model; 0: FLOPs and params only')
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--json', help='also write the rows here')
    p.add_argument('--retime', metavar='JSON',
                   help='re-measure only the CPU times of the rows in JSON (a previous --json), interleaved '
                        'in one process; FLOPs and params are kept')
    p.add_argument('--time-one', nargs=2, help=argparse.SUPPRESS)
    p.add_argument('--time-all', nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.time_one:
        print(json.dumps(time_one(Path(args.time_one[0]), Path(args.time_one[1]), args.runs, args.threads)))
        return
    if args.time_all:
        models = json.loads(Path(args.time_all[0]).read_text())
        print(json.dumps(time_all(models, Path(args.time_all[1]), args.runs, args.threads)))
        return
    if args.retime:
        retime(args)
        return
    import torch
    from cream_det.space import get_arch
    print(f'torch {torch.__version__}, {args.threads} thread(s), {args.runs} timed runs after 1 warm-up, '
          f'image {W}x{H}')
    models = [(f'{d}_{n}', ROOT / DETECTORS[d].format(n=n.split('_')[1]), d, n)
              for d in args.detectors for n in args.nets]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        root = make_image_set(tmp)
        for name, text in BASELINES.items():
            (tmp / f'{name}.py').write_text(text)
            models.append((name, tmp / f'{name}.py', 'retinanet', name.split('_')[1]))
        from mmengine.analysis.print_helper import _format_size
        for name, cfg, det, net in models:
            flops_str, params_str = mmdet_get_flops(cfg, root, INPUT_SHAPE.get(det, (H, 1344)))
            r = subprocess.run([sys.executable, __file__, '--time-one', str(cfg), str(root), '--runs',
                                str(args.runs), '--threads', str(args.threads)],
                               capture_output=True, text=True, cwd=ROOT, env=_env())
            if r.returncode:
                raise RuntimeError(f'timing {name}: {r.stderr[-2000:]}')
            t = json.loads(r.stdout.strip().splitlines()[-1])
            # the unrounded counts must be the ones mmdet's tool printed, rounded
            if (_format_size(t['flops']), _format_size(t['params'])) != (flops_str, params_str):
                raise RuntimeError(f'{name}: get_flops.py printed {flops_str}/{params_str}, the same counter here '
                                   f'gives {t["flops"]}/{t["params"]}')
            arch = get_arch(net) if net.startswith('cream_') else None
            macs = arch.macs / 1e6 if arch else None
            row = dict(name=name, detector=det, backbone=net, backbone_mmacs=macs,
                       backbone_resolution=arch.resolution if arch else None, get_flops_printed=flops_str,
                       get_flops_params_printed=params_str, gflops=t['flops'] / 1e9, params_m=t['params'] / 1e6,
                       backbone_gflops=t['backbone_flops'] / 1e9, input=t['input'],
                       cpu_ms=t['sec_per_img'] * 1000 if t['times'] else None,
                       cpu_runs_ms=[x * 1000 for x in t['times']],
                       backbone_cpu_ms=statistics.median(t['backbone_times']) * 1000 if t['times'] else None,
                       backbone_cpu_runs_ms=[x * 1000 for x in t['backbone_times']])
            rows.append(row)
            print(f'{name}: detector {row["gflops"]:.2f} GFLOPs (get_flops.py: {flops_str}), backbone in it '
                  f'{row["backbone_gflops"]:.2f} GFLOPs, {row["params_m"]:.2f} M params (get_flops.py: {params_str})'
                  + (f', CPU {row["cpu_ms"]:.0f} ms/img (backbone {row["backbone_cpu_ms"]:.0f} ms)'
                     if t['times'] else '')
                  + (f', backbone {macs:.1f} MMACs at {arch.resolution} px' if arch else ''),
                  flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + '\n')
    print()
    print(markdown(rows, args.threads))



def retime(args: argparse.Namespace) -> None:
    """``--retime``: the CPU column again, all models interleaved (see :func:`time_all`)."""
    rows = json.loads(Path(args.retime).read_text())
    print(f'interleaved timing of {len(rows)} models from {args.retime}: {args.threads} thread(s), '
          f'1 warm-up each, {args.runs} rounds, image {W}x{H}')
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        root = make_image_set(tmp)
        for name, text in BASELINES.items():
            (tmp / f'{name}.py').write_text(text)
        cfgs = [(r['name'], str(tmp / f'{r["name"]}.py') if r['name'] in BASELINES
                 else str(ROOT / DETECTORS[r['detector']].format(n=r['backbone'].split('_')[1]))) for r in rows]
        (tmp / 'models.json').write_text(json.dumps(cfgs))
        r = subprocess.run([sys.executable, __file__, '--time-all', str(tmp / 'models.json'), str(root), '--runs',
                            str(args.runs), '--threads', str(args.threads)],
                           capture_output=True, text=True, cwd=ROOT, env=_env())
        if r.returncode:
            raise RuntimeError(f'timing: {r.stderr[-3000:]}')
        times = json.loads(r.stdout.strip().splitlines()[-1])
    for row in rows:
        update_times(row, times)
        runs = {k: ', '.join(f'{x:.0f}' for x in row[k]) for k in ('cpu_runs_ms', 'backbone_cpu_runs_ms')}
        print(f'{row["name"]}: CPU {row["cpu_ms"]:.0f} ms/img (runs {runs["cpu_runs_ms"]}), '
              f'backbone {row["backbone_cpu_ms"]:.0f} ms (runs {runs["backbone_cpu_runs_ms"]})', flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + '\n')
    print()
    print(markdown(rows, args.threads))

def update_times(row: dict, times: dict) -> None:
    """A row's CPU columns from :func:`time_all`'s interleaved seconds."""
    ts, bs = times['test_step'][row['name']], times['backbone'][row['name']]
    row.update(cpu_ms=statistics.median(ts) * 1000, cpu_runs_ms=[x * 1000 for x in ts],
               backbone_cpu_ms=statistics.median(bs) * 1000, backbone_cpu_runs_ms=[x * 1000 for x in bs],
               input=times['input'][row['name']], timing='interleaved')


def _env() -> dict:
    return dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS='1')


def _at(row: dict) -> str:
    """' @896×544' where a recipe's test input is not the table's 1333×800 (padded 1344×800)."""
    h, w = row['input'][-2:]
    return '' if (h, w) == (H, 1344) else f' @{w}×{h}'


def _ms(row: dict, key: str) -> str:
    return f'{row[key]:.0f} ms' if row.get(key) is not None else '—'


def markdown(rows: list, threads: int) -> str:
    head = ['| detector | backbone | backbone MACs (paper: classification, own resolution) | backbone FLOPs (1333×800) | detector FLOPs (1333×800) '
            f'| params | CPU time / image ({threads} thread) | backbone CPU time (1333×800, {threads} thread) '
            '| COCO box AP |',
            '|---|---|---:|---:|---:|---:|---:|---:|---:|']
    body = [f'| {r["detector"]} | {r["backbone"]} | '
            + (f'{r["backbone_mmacs"]:.1f} M @{r["backbone_resolution"]}²' if r['backbone_mmacs'] else '—')
            + f' | {r["backbone_gflops"]:.2f} G{_at(r)} | {r["gflops"]:.2f} G ({r["get_flops_printed"]}){_at(r)} '
              f'| {r["params_m"]:.2f} M | {_ms(r, "cpu_ms")} | {_ms(r, "backbone_cpu_ms")}'
            + (_at(r) if r.get('backbone_cpu_ms') is not None else '') + ' | |' for r in rows]
    return '\n'.join(head + body)


if __name__ == '__main__':
    main()
