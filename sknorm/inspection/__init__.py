"""Inspection tools: what information does a transformer throw away?"""

from ._invariance import invariance_table

__all__ = ["invariance_table"]
