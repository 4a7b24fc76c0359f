"""benchmarks/det_zoo.py's CPU columns, run at a tiny test size: the figures are void, the plumbing is not."""
import statistics
from pathlib import Path

import pytest
from script_modules import load_script

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures('one_thread')]


@pytest.fixture(scope='module')
def det_zoo():
    return load_script('benchmarks/det_zoo.py')


def tiny_config(tmp_path: Path) -> Path:
    """RetinaNet cream_14 as the zoo builds it, its test pipeline resizing to 128x96 instead of 1333x800."""
    cfg = tmp_path / 'retinanet_tiny.py'
    cfg.write_text(
        f"_base_ = '{ROOT}/configs/retinanet/retinanet_cream-14_fpn_1x_coco.py'\n"
        "val_dataloader = dict(dataset=dict(pipeline=[\n"
        "    dict(type='LoadImageFromFile'), dict(type='Resize', scale=(128, 96), keep_ratio=True),\n"
        "    dict(type='LoadAnnotations', with_bbox=True),\n"
        "    dict(type='PackDetInputs',\n"
        "         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))]))\n")
    return cfg


def test_backbone_column_times_the_backbone_alone_interleaved(det_zoo, tmp_path):
    root = det_zoo.make_image_set(tmp_path)
    cfg = tiny_config(tmp_path)
    times = det_zoo.time_all([('tiny', str(cfg))], root, runs=2, threads=1)
    # the backbone gets the detector's own preprocessed input: 128x77 padded to 32, (N, C, H, W)
    assert times['input'] == {'tiny': [1, 3, 96, 128]}
    steps, backbone = times['test_step']['tiny'], times['backbone']['tiny']
    assert len(steps) == len(backbone) == 2 and min(backbone) > 0
    # the backbone alone, not the detector: a fraction of test_step (neck, head, box decoding, NMS)
    assert statistics.median(backbone) < statistics.median(steps)
    row = dict(name='tiny', detector='retinanet', backbone='cream_14', backbone_mmacs=13.8, backbone_resolution=64,
               backbone_gflops=0.01, gflops=0.1, get_flops_printed='0.1G', params_m=3.0, input=[1, 3, 800, 1344])
    det_zoo.update_times(row, times)
    assert row['backbone_cpu_ms'] == pytest.approx(statistics.median(backbone) * 1000)
    assert row['input'] == [1, 3, 96, 128] and row['timing'] == 'interleaved'
    table = det_zoo.markdown([row, dict(row, cpu_ms=None, backbone_cpu_ms=None)], 1).splitlines()
    assert 'backbone CPU time (1333×800, 1 thread)' in table[0]
    assert table[2].endswith(f'| {row["backbone_cpu_ms"]:.0f} ms @128×96 | |')
    assert table[3].endswith('| — | — | |')          # a row of an older JSON, or --runs 0
    one = det_zoo.time_one(cfg, root, runs=1, threads=1)    # the per-process path times both too
    assert len(one['times']) == len(one['backbone_times']) == 1 and one['input'] == [1, 3, 96, 128]
