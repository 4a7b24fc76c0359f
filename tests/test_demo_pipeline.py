"""The README's first command, at reduced size: every stage through the real tools, every artifact valid."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import cream_det  # noqa: F401
from cream_det.det import CreamBackbone
from cream_det.space import Arch

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_demo_pipeline_quick(tmp_path):
    work = tmp_path / 'demo'
    env = dict(os.environ, OMP_NUM_THREADS='1')
    r = subprocess.run([sys.executable, str(ROOT / 'tools/demo.py'), '--work-dir', str(work), '--quick'],
                       capture_output=True, text=True, cwd=ROOT, env=env, timeout=1800)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    assert '| RetinaNet bbox mAP' in r.stdout
    summary = json.loads((work / 'summary.json').read_text())
    arch = Arch.load(summary['arch_file'])                               # the arch file loads (and re-measures)
    assert json.loads((work / 'search' / 'board.json').read_text())['entries']
    assert (work / 'search' / 'board.png').is_file()
    bb = CreamBackbone(init_cfg=dict(type='Pretrained', checkpoint=summary['retrain_checkpoint']))
    bb.init_weights()                                                    # the retrain checkpoint fits the backbone
    assert bb.arch.stages == arch.stages
    assert summary['top1'] > 30.0                                        # 10 classes: chance is 10 %
    # an untrained detector finds nothing on the digits (mmdet reports no metric: mAP 0)
    assert 0.0 < summary['bbox_mAP'] <= 1.0
    assert set(summary['seconds_per_stage']) == {'data', 'search', 'retrain', 'detection', 'evaluation'}
    # a second run into the same work dir is refused unless it resumes explicitly
    again = subprocess.run([sys.executable, str(ROOT / 'tools/demo.py'), '--work-dir', str(work)],
                           capture_output=True, text=True, cwd=ROOT, env=env)
    assert again.returncode == 2 and 'pass --resume' in again.stderr
    resumed = subprocess.run([sys.executable, str(ROOT / 'tools/demo.py'), '--work-dir', str(work), '--resume',
                              '--quick'], capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert resumed.returncode == 0 and 'already done' in resumed.stdout
    assert not list(work.rglob('*.tmp')) and not list(work.rglob('.*.partial-*'))
