"""mmdet integration: importing this registers ``CreamBackbone`` and ``CreamFPN`` in ``mmdet.registry.MODELS``."""
from .backbone import CreamBackbone
from .neck import CreamFPN

__all__ = ['CreamBackbone', 'CreamFPN']
