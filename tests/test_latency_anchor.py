"""Anchored timing: every module timed in turns with one anchor, so a machine whose speed changes while a
table is measured prices every entry, and every arch checked later, at one speed."""
import json

import numpy as np
import pytest
import torch.nn as nn

import cream_det.models.latency_measure as lm
from cream_det.engine.search_latency import prepare_latency_table
from cream_det.errors import ConfigError, LatencyTableError
from cream_det.models.latency import LatencyTable
from cream_det.space import Arch, Op, SearchSpace, StageSpec

RES, NCLS = 32, 10
TINY = SearchSpace('tiny_anchor', (StageSpec(8, 2, Op(3, 2), 2), StageSpec(16, 2, Op(3, 2), 3)),
                   (Op(3, 2), Op(5, 2)), stem_channels=8, last_channels=24, head_channels=32)


class _Machine:
    """A virtual clock that runs 3x slower for good once ``slow_after`` forwards have run (a neighbour's job
    starts): the timing code reads this clock, so the test does not depend on how busy the real machine is."""

    def __init__(self, slow_after: int) -> None:
        self.calls, self.slow_after, self.now = 0, slow_after, 0.0

    def perf_counter(self) -> float:
        return self.now

    def run(self, ms: float) -> None:
        self.calls += 1
        self.now += ms * (3.0 if self.calls > self.slow_after else 1.0) / 1e3


class _Busy(nn.Module):
    """A module that takes ``ms`` on the machine's clock at the machine's current speed."""

    def __init__(self, machine: _Machine, ms: float) -> None:
        super().__init__()
        self.machine, self.ms = machine, ms

    def forward(self, x):
        self.machine.run(self.ms)
        return x


def test_anchored_ratio_survives_a_machine_that_slows_down_between_the_two_modules(monkeypatch):
    # timed one after the other, the anchor would run fast and the module slow (ratio 6, or 3x the module's
    # ms); in turns, each repeat sees one speed and the ratio is the module's true 2x the anchor
    machine = _Machine(slow_after=24)
    monkeypatch.setattr(lm, 'time', machine)
    anchor, module = _Busy(machine, 1.0), _Busy(machine, 2.0)
    ratio, anchor_ms = lm.time_anchored(module, (1, 1), anchor, (1, 1), warmup=2, repeats=20)
    assert ratio == pytest.approx(2.0)
    assert anchor_ms.shape == (20,) and sorted(set(np.round(anchor_ms, 6))) == [1.0, 3.0]    # it slowed inside
    slow = _Machine(slow_after=0)
    monkeypatch.setattr(lm, 'time', slow)
    assert lm.time_module(_Busy(slow, 2.0), (1, 1), warmup=1, repeats=5) == pytest.approx(6.0)  # plain: the speed


def test_an_anchored_table_prices_every_ratio_at_the_median_of_all_the_anchors_runs(monkeypatch):
    seen = []

    def fake(module, shape, anchor, anchor_shape, **timing):
        seen.append(tuple(anchor_shape))
        # the anchor ran at 1 ms for the first module, 3 ms for the others: the median over all runs is 3
        return 0.5, np.full(4, 1.0 if len(seen) == 1 else 3.0)
    monkeypatch.setattr(lm, 'time_anchored', fake)
    table = lm.measure_table(TINY, RES, num_classes=NCLS, anchor=True)
    assert table.anchor_ms == 3.0 and set(seen) == {(1, 3, RES, RES)}
    assert all(v == 1.5 for v in table.fixed.values())
    filled = table.ms[:, :-1]
    assert (filled == 1.5).all()
    assert lm.table_timing(table, 2, 5)['anchor_ms'] == 3.0


def test_an_arch_checked_against_an_anchored_table_is_priced_at_the_tables_anchor(monkeypatch):
    arch = Arch(((Op(3, 2),), (Op(5, 2),)), RES, NCLS, TINY)
    calls = []

    def fake(module, shape, anchor, anchor_shape, **timing):
        calls.append((tuple(shape), tuple(anchor_shape), type(anchor).__name__))
        return 2.5, np.ones(3)
    monkeypatch.setattr(lm, 'time_anchored', fake)
    assert lm.measure_arch(arch, anchor_ms=4.0) == 10.0
    assert calls == [((1, 3, RES, RES), (1, 3, RES, RES), 'Sequential')]
    with pytest.raises(ConfigError, match='anchor_ms'):
        lm.measure_arch(arch, anchor_ms=0.0)


def test_the_anchor_is_the_same_module_in_every_process():
    a, b = lm.anchor_module(TINY), lm.anchor_module(TINY)
    assert {k: v.shape for k, v in a.state_dict().items()} == {k: v.shape for k, v in b.state_dict().items()}
    assert a[0].in_channels == 3 and a[0].stride == (2, 2)              # the stem, then the first block


def test_anchor_ms_round_trips_and_a_bad_one_is_refused(tmp_path):
    table = lm.measure_table(TINY, RES, num_classes=NCLS, warmup=1, repeats=2, anchor=True)
    assert table.anchor_ms > 0
    table.save(tmp_path / 't.json')
    loaded = LatencyTable.load(tmp_path / 't.json')
    assert loaded.anchor_ms == table.anchor_ms and loaded.arch_record(
        Arch(((Op(3, 2),), (Op(5, 2),)), RES, NCLS, TINY))['anchored'] is True
    d = json.loads((tmp_path / 't.json').read_text())
    for bad in (0, -1.0, 'fast'):
        (tmp_path / 'bad.json').write_text(json.dumps(dict(d, anchor_ms=bad)))
        with pytest.raises(LatencyTableError, match='anchor_ms|malformed'):
            LatencyTable.load(tmp_path / 'bad.json')
    plain = dict(d)
    plain.pop('anchor_ms')                                  # a file from before anchoring: plain timing
    (tmp_path / 'old.json').write_text(json.dumps(plain))
    assert LatencyTable.load(tmp_path / 'old.json').anchor_ms is None


def test_a_run_time_table_with_anchor_times_its_calibration_archs_against_the_same_anchor(monkeypatch, tmp_path):
    from mmengine.config import Config
    ratios = []

    def fake(module, shape, anchor, anchor_shape, **timing):
        ratios.append(tuple(shape))
        return 1.0, np.full(3, 2.0)
    monkeypatch.setattr(lm, 'time_anchored', fake)
    monkeypatch.setattr('cream_det.space.get_space', lambda name: TINY)
    cfg = Config(dict(work_dir=str(tmp_path), model=dict(
        space='tiny_anchor', resolution=RES, num_classes=NCLS,
        latency_table=dict(measure=True, warmup=1, repeats=2, calibrate=3, anchor=True))))
    assert prepare_latency_table(cfg) == dict(warmup=1, repeats=2)      # the timing the pick is measured with
    table = LatencyTable.load(cfg.model.latency_table)
    assert table.anchor_ms == 2.0 and table.correction.fit_archs == 3
    # three calibration archs timed whole (their input is the net's), all through the anchored path
    assert sum(s == (1, 3, RES, RES) for s in ratios) >= 3 + 1      # + the stem entry of the table


def test_the_pick_is_timed_here_only_for_a_table_measured_here(monkeypatch, tmp_path):
    from mmengine.config import Config

    from cream_det.engine.search_latency import time_pick_here
    table = lm.measure_table(TINY, RES, num_classes=NCLS, warmup=1, repeats=2)
    table.save(tmp_path / 't.json')
    file_cfg = Config(dict(work_dir=str(tmp_path), model=dict(latency_table=str(tmp_path / 't.json'))))
    assert prepare_latency_table(file_cfg) is None          # a file may be another device's: nothing timed here
    arch = Arch(((Op(3, 2),), (Op(5, 2),)), RES, NCLS, TINY)
    monkeypatch.setattr(lm, 'time_anchored', lambda *a, **k: (1.5, np.ones(2)))
    anchored = time_pick_here(replace_anchor(table, 2.0), arch, dict(warmup=1, repeats=3))
    plain_ms = anchored.pop('measured_plain_ms')             # the plain time beside it, timed alone
    assert anchored == {'measured_ms': 3.0, 'measured': 'anchored', 'measured_repeats': 3} and plain_ms > 0
    plain = time_pick_here(table, arch, dict(warmup=1, repeats=3))
    assert plain['measured'] == 'plain' and plain['measured_ms'] > 0


def test_the_pick_is_timed_in_a_fresh_process(monkeypatch, tmp_path):
    """The search's own process, after training, timed picks 1.09-1.24x slower than a fresh process: the pick
    is timed in a child. Any timing in this process fails the test; the space (defined only in this test) and the
    table's anchor travel to the child."""
    from cream_det.engine.search_latency import measure_pick

    def here(*a, **k):
        raise AssertionError('the pick was timed in the search process')
    monkeypatch.setattr(lm, 'measure_arch', here)
    monkeypatch.setattr(lm, 'time_anchored', here)
    table = replace_anchor(lm.measure_table(TINY, RES, num_classes=NCLS, warmup=1, repeats=2), 2.0)
    arch = Arch(((Op(3, 2),), (Op(5, 2),)), RES, NCLS, TINY)
    record = measure_pick(table, arch, dict(warmup=1, repeats=3))
    assert record['measured'] == 'anchored' and record['measured_repeats'] == 3
    assert record['measured_ms'] > 0 and record['measured_plain_ms'] > 0


def replace_anchor(table: LatencyTable, anchor_ms: float) -> LatencyTable:
    from dataclasses import replace
    return replace(table, anchor_ms=anchor_ms)
