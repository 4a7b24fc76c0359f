"""Networks: timm-built subnets, the published zoo, checkpoint loading and the supernet."""
from .subnet import build_subnet, feature_channels
from .zoo import ZOO, get_arch


def build(arch, **kwargs):
    """``cream_det.models.build('cream_287')`` / ``build('arch.json')`` / ``build(Arch(...))``."""
    return build_subnet(arch, **kwargs)


__all__ = ['build', 'build_subnet', 'feature_channels', 'ZOO', 'get_arch']
