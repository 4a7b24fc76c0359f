"""Networks: timm-built subnets, the published zoo in timm, checkpoint loading and the supernet."""
from . import zoo  # noqa: F401  (registers the published nets in timm)
from .subnet import build_subnet, feature_channels


def build(arch, **kwargs):
    """``cream_det.models.build('cream_287')`` / ``build('arch.json')`` / ``build(Arch(...))``."""
    return build_subnet(arch, **kwargs)


__all__ = ['build', 'build_subnet', 'feature_channels']
