"""Prioritized path board: each clause of the paper's rule, ordering, persistence."""
import io
import json

import pytest
import torch

from cream_det.search.board import PrioritizedBoard
from cream_det.space import CREAM_SPACE, Arch, ArchSampler

SLICE, NCLS = 4, 10


def _offer(board, code, acc, macs, step=0):
    images = torch.randn(SLICE, 3, 8, 8)
    soft = torch.softmax(torch.randn(SLICE, NCLS), dim=1)
    return board.consider(code, acc, macs, images, soft, step)


def _full(size=3):
    """A full board whose worst entry has 50% at 200 MMACs."""
    b = PrioritizedBoard(size=size, margin=5.0)
    for i, (acc, macs) in enumerate([(70.0, 300), (60.0, 250), (50.0, 200)][:size]):
        assert _offer(b, (i,), acc, macs, step=i)
    return b


def test_enters_while_not_full_whatever_its_score():
    b = PrioritizedBoard(size=3)
    assert _offer(b, (0,), 1.0, 10**9) and _offer(b, (1,), 0.0, 10**9) and len(b) == 2


def test_enters_when_better_than_worst_by_more_than_the_margin_even_if_costlier():
    b = _full()
    assert _offer(b, (9,), 55.01, 10**9)
    assert [e.acc for e in b] == [70.0, 60.0, 55.01]


def test_enters_when_better_and_cheaper():
    b = _full()
    assert _offer(b, (9,), 50.5, 199)
    assert b.entries[-1].code == (9,) and len(b) == 3


@pytest.mark.parametrize('acc, macs', [
    (55.0, 201),     # better but costlier, and exactly at the margin (must *exceed* worst + 5)
    (52.0, 300),     # better within the margin, costlier
    (54.0, 200),     # better within the margin, same cost
    (50.0, 100),     # cheaper but not better
    (49.0, 1),       # worse
])
def test_rejected(acc, macs):
    b = _full()
    before = [(e.code, e.acc) for e in b]
    assert not _offer(b, (9,), acc, macs)
    assert [(e.code, e.acc) for e in b] == before


def test_worst_drops_past_k_and_order_is_acc_then_macs():
    b = PrioritizedBoard(size=4)
    for i, (acc, macs) in enumerate([(60, 300), (70, 100), (60, 200), (80, 500)]):
        _offer(b, (i,), acc, macs)
    assert [e.code for e in b] == [(3,), (1,), (2,), (0,)]       # 60% ties broken by fewer MACs
    assert _offer(b, (4,), 66.0, 999)                            # > 60 + 5: enters, (0,) leaves
    assert [e.code for e in b] == [(3,), (1,), (4,), (2,)] and b.best().code == (3,)


def test_authors_tiebreak_puts_costlier_paths_first_and_survives_a_round_trip():
    b = PrioritizedBoard(size=4, tiebreak='flops_desc')
    for i, (acc, macs) in enumerate([(60, 300), (70, 100), (60, 200), (80, 500)]):
        _offer(b, (i,), acc, macs)
    assert [e.code for e in b] == [(3,), (1,), (0,), (2,)]       # their sort: (acc, FLOPs) descending
    c = PrioritizedBoard()
    c.load_state_dict(b.state_dict())
    assert c.tiebreak == 'flops_desc' and [e.code for e in c] == [(3,), (1,), (0,), (2,)]
    with pytest.raises(ValueError, match='tiebreak'):
        PrioritizedBoard(tiebreak='macs')


def test_a_path_already_on_the_board_is_not_entered_twice():
    b = PrioritizedBoard(size=3)
    assert _offer(b, (1, 2), 50.0, 100)
    assert not _offer(b, (1, 2), 90.0, 50)            # never re-scored, never duplicated
    assert len(b) == 1 and b.best().acc == 50.0


def test_stored_slice_is_a_copy():
    b = PrioritizedBoard()
    batch = torch.randn(32, 3, 8, 8, requires_grad=True)
    b.consider((0,), 10.0, 1, batch[:SLICE], torch.ones(SLICE, NCLS) / NCLS, 0)
    e = b.best()
    assert not e.images.requires_grad and e.images.untyped_storage().size() == SLICE * 3 * 8 * 8 * 4


def test_state_dict_round_trip_is_exact():
    b = _full()
    buf = io.BytesIO()
    torch.save(b.state_dict(), buf)
    buf.seek(0)
    c = PrioritizedBoard(size=1, margin=0.0)
    c.load_state_dict(torch.load(buf, weights_only=True))
    assert (c.size, c.margin, len(c)) == (3, 5.0, 3)
    for x, y in zip(b, c):
        assert (x.code, x.acc, x.macs, x.step) == (y.code, y.acc, y.macs, y.step)
        assert torch.equal(x.images, y.images) and torch.equal(x.soft, y.soft)
    # and it keeps applying the rule the same way
    assert _offer(c, (9,), 50.5, 199) and c.entries[-1].code == (9,)


def test_json_report(tmp_path):
    codes = ArchSampler(CREAM_SPACE, 224, 1000, depths=(2, 2, 2, 2, 2), seed=0).sample_codes(2)
    b = PrioritizedBoard()
    _offer(b, codes[0], 40.0, 123, step=7)
    _offer(b, codes[1], 45.0, 456, step=9)
    path = tmp_path / 'board.json'
    b.write_json(path, CREAM_SPACE, 224, 1000)
    d = json.loads(path.read_text())
    assert [e['rank'] for e in d['entries']] == [1, 2] and d['entries'][0]['step'] == 9
    arch = Arch.from_dict(d['entries'][0]['arch'])
    assert tuple(arch.encode()) == tuple(codes[1]) and arch == b.best().arch(CREAM_SPACE, 224, 1000)
