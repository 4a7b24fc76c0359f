"""cream_det: Cream one-shot NAS whose searched networks go straight into mmdet detection.

Importing the package registers its components: the published nets in timm's model registry
and, where mmdet is installed, the ``CreamBackbone`` in mmdet's ``MODELS`` — so a detection config
needs only ``custom_imports=dict(imports=['cream_det'])``.
"""
from importlib.util import find_spec

from .version import __version__
from . import models  # noqa: F401,E402  (registers cream_14 … cream_604 in timm)

if find_spec('mmengine') is not None:    # the mmengine components of search and retraining
    from .engine import supernet_search as _search  # noqa: F401
    from .engine import retrain as _retrain  # noqa: F401  (retraining model, dataset, metric, hooks)
if find_spec('mmdet') is not None:       # search/retrain users need not install mmdet
    from . import det  # noqa: F401

__all__ = ['__version__', 'models']
