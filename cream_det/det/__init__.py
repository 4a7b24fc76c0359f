"""mmdet integration: importing this registers ``CreamBackbone`` in ``mmdet.registry.MODELS``."""
from .backbone import CreamBackbone

__all__ = ['CreamBackbone']
