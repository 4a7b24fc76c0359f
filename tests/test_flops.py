"""The analytic MACs/params model against the published table and an independent profiler."""
import numpy as np
import pytest
import torch
from fvcore.nn import FlopCountAnalysis
from timm.layers import make_divisible as timm_make_divisible

from cream_det.models import build_subnet
from cream_det.space import CREAM_SPACE, Arch, ArchSampler, get_arch
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
