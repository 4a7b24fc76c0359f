"""cream_det: Cream one-shot NAS whose searched networks go straight into mmdet detection.

Importing the package registers its components: the published nets in timm's model registry
and, where mmdet is installed, the ``CreamBackbone`` in mmdet's ``MODELS`` — so a config needs
only ``custom_imports=dict(imports=['cream_det'])``.
"""
from .version import __version__
from . import models  # noqa: F401,E402  (registers cream_14 … cream_604 in timm)

__all__ = ['__version__', 'models']
