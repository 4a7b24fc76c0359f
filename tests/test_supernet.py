"""Supernet: exact export of every path, error handling, and the authors' sizing rule."""
import numpy as np
import pytest
import torch

from cream_det.errors import ArchError, SpaceError
from cream_det.models import build_subnet
from cream_det.models.supernet import Supernet
from cream_det.space.sizing import AUTHORS_CAPS, AUTHORS_GROW_ORDER, supernet_depths
from cream_det.space import Arch, ArchSampler, CREAM_SPACE, cost_table, get_arch
from cream_det.space.spec import Op, SearchSpace, StageSpec

from bn_stats import randomize_bn_stats

DEPTHS = (4, 4, 4, 4, 4)


pytestmark = pytest.mark.usefixtures('one_thread')

@pytest.fixture(scope='module')
def net() -> Supernet:
    torch.manual_seed(0)
    n = Supernet(CREAM_SPACE, DEPTHS, num_classes=10, resolution=64)
    return randomize_bn_stats(n).eval()


def _paths():
    codes = ArchSampler(CREAM_SPACE, 64, 10, depths=DEPTHS, seed=1).sample_codes(3)
    shallow = ArchSampler(CREAM_SPACE, 64, 10, depths=(1, 2, 3, 4, 2), seed=2).sample()
    return [codes[0], codes[1], Arch.decode(codes[2], CREAM_SPACE, 64, 10), shallow,
            get_arch('cream_287').with_(num_classes=10)]


@pytest.mark.parametrize('k', range(5))
def test_every_path_exports_exactly(net, k):
    arch = _paths()[k]
    x = torch.randn(2, 3, 64, 64)
    sub = net.export_subnet(arch).eval()
    with torch.no_grad():
        torch.testing.assert_close(net(x, arch), sub(x), atol=1e-6, rtol=0)
    assert set(net.subnet_state_dict(arch)) == set(build_subnet(net.arch_of(arch)).state_dict())


def test_features_are_the_subnets(net):
    arch = _paths()[3]
    x = torch.randn(1, 3, 64, 64)
    feats_model = build_subnet(net.arch_of(arch), features_only=True, out_indices=(1, 2, 3, 4)).eval()
    sd = {k: v for k, v in net.subnet_state_dict(arch).items() if k.startswith(('conv_stem', 'bn1', 'blocks'))}
    feats_model.load_state_dict(sd, strict=True)
    with torch.no_grad():
        ours, theirs = net.features(x, arch), feats_model(x)
    assert [64 // f.shape[-1] for f in ours] == [4, 8, 16, 32]
    assert [f.shape[1] for f in ours] == [24, 40, 96, 320]
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


def test_only_the_path_gets_gradients(net):
    arch = _paths()[3]
    net.zero_grad(set_to_none=True)
    net(torch.randn(2, 3, 32, 32), arch).sum().backward()
    with_grad = {n for n, p in net.named_parameters() if p.grad is not None}
    assert with_grad == {n for n, _ in net.named_path_parameters(arch)}
    net.zero_grad(set_to_none=True)


def test_paths_outside_the_supernet_are_refused(net):
    with pytest.raises(ArchError, match='the supernet only 4'):
        net(torch.zeros(1, 3, 32, 32), get_arch('cream_604'))
    code = _paths()[0].copy()
    code[0] = 6
    with pytest.raises(ArchError, match='op index outside'):
        net.parse_path(code)
    code[0], code[1] = 0, -1                    # gap inside a stage
    with pytest.raises(ArchError, match='followed only by -1'):
        net.parse_path(code)
    with pytest.raises(ArchError, match='vector of 30 ints'):
        net.parse_path(np.zeros(5, dtype=np.int8))
    other = SearchSpace('other_space', CREAM_SPACE.stages, CREAM_SPACE.ops[:2])
    with pytest.raises(ArchError, match="search space 'other_space'"):
        net.parse_path(Arch(tuple((Op(3, 4),) for _ in range(5)), space=other))
    with pytest.raises(SpaceError, match='do not fit'):
        Supernet(CREAM_SPACE, (7, 1, 1, 1, 1))


def test_layout_and_size():
    tiny = SearchSpace('tiny_sn', (StageSpec(8, 2, Op(3, 2), 2), StageSpec(16, 2, Op(3, 2), 2)),
                       (Op(3, 2), Op(5, 2)), stem_channels=8, first_block='ds_r1_k3_s1_e1_c8_se0.25',
                       last_channels=16, head_channels=16)
    n = Supernet(tiny, (2, 1), num_classes=5, resolution=32)
    assert len(n.blocks) == 4 and [len(n.blocks[1]), len(n.blocks[2])] == [2, 1]
    assert all(len(layer) == 2 for layer in n.blocks[1])
    assert n.blocks[1][0][1].conv_dw.kernel_size == (5, 5) and n.blocks[1][0][0].conv_dw.stride == (2, 2)
    assert n.blocks[1][1][0].conv_dw.stride == (1, 1) and n.blocks[1][1][0].has_skip
    with pytest.raises(SpaceError, match='pass grow_order and caps'):
        supernet_depths(tiny, (0, 1e9), 32)
    assert supernet_depths(tiny, (0, 1e9), 32, grow_order=(1, 0), caps=((2, 2),)) == ((2, 2), 32)


def test_aligned_init_starts_candidates_as_slices_of_the_largest():
    torch.manual_seed(0)
    n = Supernet(CREAM_SPACE, (1, 2, 1, 1, 1), num_classes=10, resolution=64, init='aligned')
    for stage in n.blocks[1:-1]:
        for layer in stage:
            big = layer[CREAM_SPACE.ops.index(Op(7, 6))]
            small = layer[CREAM_SPACE.ops.index(Op(3, 4))]
            c = small.conv_dw.weight.shape[0]
            assert torch.equal(small.conv_dw.weight, big.conv_dw.weight[:c, :, 2:5, 2:5])   # centre 3x3
            assert torch.equal(small.conv_pw.weight, big.conv_pw.weight[:c])
            assert torch.equal(small.conv_pwl.weight, big.conv_pwl.weight[:, :c])
            assert small.conv_dw.weight.data_ptr() != big.conv_dw.weight.data_ptr()      # still separate
    plain = Supernet(CREAM_SPACE, (1, 2, 1, 1, 1), num_classes=10, resolution=64)
    layer = plain.blocks[1][0]
    assert not torch.equal(layer[0].conv_pw.weight, layer[5].conv_pw.weight[:layer[0].conv_pw.weight.shape[0]])
    with pytest.raises(ArchError, match="'independent' or 'aligned'"):
        Supernet(CREAM_SPACE, (1, 1, 1, 1, 1), init='shared')


# ---- sizing rule --------------------------------------------------------------------------------
def test_sizing_gives_the_authors_supernet():
    assert supernet_depths(CREAM_SPACE, (0, 600e6), 224) == (DEPTHS, 224)


def _growth_sequence():
    """The depth states the authors' rule walks through, in order."""
    d, seq = [1] * 5, [(1,) * 5]
    for caps in AUTHORS_CAPS:
        for k, s in enumerate(AUTHORS_GROW_ORDER):
            while d[s] < caps[k]:
                d[s] += 1
                seq.append(tuple(d))
    return seq


@pytest.mark.parametrize('hi', [150e6, 250e6, 330e6, 450e6])
def test_sizing_stops_at_the_first_layer_over_the_max(hi):
    depths, res = supernet_depths(CREAM_SPACE, (0, hi), 224)
    assert res == 224
    seq, t = _growth_sequence(), cost_table(CREAM_SPACE, 224)
    i = seq.index(depths)
    assert t.bounds(depths)[1] <= hi < t.bounds(seq[i + 1])[1]


def test_sizing_lowers_resolution_then_gives_up():
    depths, res = supernet_depths(CREAM_SPACE, (0, 40e6), 224)
    assert res < 224 and cost_table(CREAM_SPACE, res).bounds((1,) * 5)[0] <= 40e6
    assert cost_table(CREAM_SPACE, res + 32).bounds((1,) * 5)[0] > 40e6
    smallest = cost_table(CREAM_SPACE, 32).bounds((1,) * 5)[0]
    with pytest.raises(SpaceError, match=f'needs {smallest / 1e6:.2f}M MACs even at resolution 32'):
        supernet_depths(CREAM_SPACE, (0, 1e6), 224)
    with pytest.raises(SpaceError, match='reaches only'):
        supernet_depths(CREAM_SPACE, (700e6, 800e6), 224)


@pytest.mark.parametrize('strategy', [dict(type='spos'), dict(type='mixpath', max_paths=2)])
def test_head_init_zero_starts_every_path_at_chance_and_leaves_the_rest_as_timm_made_it(strategy):
    """head_init='zero' (for few classes): every logit of every path is 0 before the first step, while the
    body is initialised exactly as with the authors' 'timm' head (same seed, same weights); the search model
    passes it to either supernet."""
    import math
    import torch.nn.functional as F
    from cream_det.engine.supernet_search import SupernetSearch
    tiny = SearchSpace('tiny_head', (StageSpec(8, 2, Op(3, 2), 2), StageSpec(16, 2, Op(3, 2), 2)),
                       (Op(3, 2), Op(5, 2), Op(3, 4)), stem_channels=8, first_block='ds_r1_k3_s1_e1_c8_se0.25',
                       last_channels=16, head_channels=16)
    models = {}
    for head in ('timm', 'zero'):
        torch.manual_seed(0)
        models[head] = SupernetSearch(strategy, (0, 1e12), space=tiny, resolution=32, num_classes=7,
                                      depths=(2, 2), head_init=head).supernet.eval()
    timm_sd, zero_sd = models['timm'].state_dict(), models['zero'].state_dict()
    assert models['zero'].head_init == 'zero' and models['timm'].head_init == 'timm'
    for k in timm_sd:
        if k.startswith('classifier.'):
            assert torch.count_nonzero(zero_sd[k]) == 0 and torch.count_nonzero(timm_sd[k.replace('bias', 'weight')])
        else:
            assert torch.equal(timm_sd[k], zero_sd[k]), k
    x, y = torch.randn(4, 3, 32, 32), torch.randint(0, 7, (4,))
    sampler = ArchSampler(tiny, 32, 7, depths=(2, 2), seed=0, max_paths=strategy.get('max_paths'))
    with torch.no_grad():
        for code in sampler.sample_codes(3):
            assert F.cross_entropy(models['zero'](x, code), y).item() == pytest.approx(math.log(7))
            assert torch.count_nonzero(models['timm'](x, code)) > 0


def test_a_bad_head_init_is_an_arch_error():
    with pytest.raises(ArchError, match='head_init'):
        Supernet(CREAM_SPACE, (1, 1, 1, 1, 1), num_classes=10, resolution=32, head_init='uniform')
