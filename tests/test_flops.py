"""The analytic MACs/params model against the published table and an independent profiler."""
from dataclasses import replace

import numpy as np
import pytest
import torch
from fvcore.nn import FlopCountAnalysis
from timm.layers import make_divisible as timm_make_divisible

from cream_det.errors import SpaceError
from cream_det.models import build_subnet, feature_channels
from cream_det.space import CREAM_SPACE, Arch, ArchSampler, Op, StageSpec, get_arch
from cream_det.space.flops import make_divisible

# params and fvcore MACs measured on the authors' own networks (shared/reference/cream_official.md)
PUBLISHED = {
    'cream_14': (2_673_096, 13_842_176),
    'cream_43': (4_398_600, 42_402_240),
    'cream_114': (4_410_120, 114_476_480),
    'cream_287': (6_044_368, 287_178_432),
    'cream_481': (7_713_360, 481_575_488),
    'cream_604': (9_695_624, 604_310_080),
}


def profiler_macs(model: torch.nn.Module, resolution: int) -> int:
    """fvcore with the pooling rule of the authors' net: timm's SE squeezes with mean(), theirs with
    AdaptiveAvgPool2d, which fvcore counts as one op per input element."""
    def mean_handle(inputs, outputs):
        return int(np.prod(inputs[0].type().sizes()))
    model.eval()
    fca = FlopCountAnalysis(model, torch.zeros(1, 3, resolution, resolution))
    fca.set_op_handle('aten::mean', mean_handle)
    fca.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    return int(fca.total())


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def test_make_divisible_is_timms():
    for v in np.linspace(1, 2000, 3001):
        assert make_divisible(v) == timm_make_divisible(v)


@pytest.mark.parametrize('name', list(PUBLISHED))
def test_published_nets_exact(name):
    params, macs = PUBLISHED[name]
    arch = get_arch(name)
    assert arch.params == params and arch.macs == macs
    model = build_subnet(arch)
    assert n_params(model) == params
    assert profiler_macs(model, arch.resolution) == macs


def test_random_archs_match_profiler():
    # 200 random archs of any depth over several resolutions and class counts
    rng = np.random.default_rng(0)
    for i in range(200):
        res = int(rng.choice([32, 64, 96, 128, 160, 224]))
        ncls = int(rng.choice([10, 1000]))
        arch = ArchSampler(CREAM_SPACE, res, ncls, seed=i).sample()
        model = build_subnet(arch)
        assert n_params(model) == arch.params, arch
        assert profiler_macs(model, res) == arch.macs, arch


def test_vectorised_equals_scalar():
    s = ArchSampler(CREAM_SPACE, 160, seed=1)
    codes = s.sample_codes(300)
    macs = s.table.macs_of(codes)
    params = s.table.params_of(codes)
    for c, m, p in zip(codes[:50], macs, params):
        a = Arch.decode(c, CREAM_SPACE, 160)
        assert (a.macs, a.params) == (m, p)


def test_multipath_archs_match_profiler():
    """MixPath archs: branches summed before one shared BN (models.mixed_op), 1..3 ops per layer."""
    rng = np.random.default_rng(1)
    for i in range(12):
        res = int(rng.choice([32, 64, 96, 160]))
        ncls = int(rng.choice([10, 1000]))
        arch = ArchSampler(CREAM_SPACE, res, ncls, max_paths=int(rng.integers(2, 4)), seed=i).sample()
        assert arch.is_multipath, arch
        model = build_subnet(arch)
        assert n_params(model) == arch.params, arch
        assert profiler_macs(model, res) == arch.macs, arch
    codes = ArchSampler(CREAM_SPACE, 96, max_paths=3, seed=0).sample_codes(200)
    table = ArchSampler(CREAM_SPACE, 96, max_paths=3).table
    for c, m, p in zip(codes[:40], table.macs_of(codes), table.params_of(codes)):
        a = Arch.decode_mask(c, CREAM_SPACE, 96)
        assert (a.macs, a.params) == (m, p)


@pytest.mark.parametrize('change', [
    dict(first_block='ds_r1_k3_s1_e1_c24_se0.25'),              # the first block widens the 16-channel stem
    dict(first_block='ds_r1_k5_s1_e1_c16'),                     # its own kernel, no SE
    dict(first_block='ir_r1_k3_s1_e3_c24_se0.25'),              # an inverted residual as the first block
    dict(stem_channels=12, first_block='ds_r1_k3_s1_e1_c20_se0.25',     # widths timm rounds up to 16, 24, 24
         stages=(StageSpec(20, 2, Op(3, 4), 2),) + CREAM_SPACE.stages[1:])])
def test_fixed_block_and_rounded_widths_match_profiler(change):
    """Stage 1's first layer takes the first block's output (not ``stem_channels``), and every width is
    the one timm's builder rounds it to: the analytic count must follow the built net, not the spec."""
    space = replace(CREAM_SPACE, name='flops_fixed_block', **change)
    for i, res in enumerate((64, 96)):
        arch = ArchSampler(space, res, 10, seed=i).sample()
        model = build_subnet(arch)
        assert n_params(model) == arch.params, arch
        assert profiler_macs(model, res) == arch.macs, arch
        features = build_subnet(arch, features_only=True).feature_info.channels()
        assert [make_divisible(c) for c in feature_channels(arch)] == features


def test_a_first_block_the_cost_model_cannot_price_is_refused():
    with pytest.raises(SpaceError, match="first_block: block 'er_r1_k3_s1_e4_c24'"):
        replace(CREAM_SPACE, name='bad_first', first_block='er_r1_k3_s1_e4_c24')
    with pytest.raises(SpaceError, match="option 'a1'"):
        replace(CREAM_SPACE, name='bad_first', first_block='ds_r1_k3_s1_e1_c24_a1')
