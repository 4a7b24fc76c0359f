"""The README's first command, at reduced size: every stage through the real tools, every artifact valid."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import cream_det  # noqa: F401
from cream_det.det import CreamBackbone
from cream_det.space import Arch

ROOT = Path(__file__).resolve().parents[1]


def _interrupt_when(cmd: list, env: dict, ready, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run ``cmd`` in its own process group and press Ctrl-C (SIGINT to the group) once ``ready()``."""
    def own_group_with_ctrl_c() -> None:       # a test run in the background inherits SIGINT ignored
        os.setsid()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=own_group_with_ctrl_c)
    t0 = time.time()
    while not ready() and p.poll() is None and time.time() - t0 < timeout:
        time.sleep(0.5)
    assert p.poll() is None, 'the run ended before it could be interrupted'
    os.killpg(p.pid, signal.SIGINT)
    out, err = p.communicate(timeout=120)
    return subprocess.CompletedProcess(cmd, p.returncode, out, err)


@pytest.mark.slow
def test_demo_pipeline_quick(tmp_path):
    work = tmp_path / 'demo'
    env = dict(os.environ, OMP_NUM_THREADS='1')
    demo = [sys.executable, str(ROOT / 'tools/demo.py'), '--work-dir', str(work), '--quick']
    # Ctrl-C in the middle of the search (after its first checkpoint): a clean exit, and the rerun
    # with --resume must not trip over anything the interrupted run left behind
    cut = _interrupt_when(demo, env, lambda: (work / 'search' / 'last_checkpoint').is_file())
    assert cut.returncode == 130 and 'interrupted' in cut.stderr, (cut.stdout + cut.stderr)[-3000:]
    assert 'Traceback' not in cut.stderr
    assert not (work / 'search' / 'arch.json').exists()
    r = subprocess.run(demo + ['--resume'], capture_output=True, text=True, cwd=ROOT, env=env, timeout=1800)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    assert 'data: already done' in r.stdout
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
