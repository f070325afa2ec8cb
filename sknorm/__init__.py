"""Per-sample (row-wise) normalizers for scikit-learn.

scikit-learn's scalers standardize each column over the samples; sknorm
standardizes each sample (row) over its features, as layer normalization
does in neural networks, and gives the tools to recover what that throws
away: a fitted per-feature affine map and the kept per-sample statistics.
"""

from ._config import config_context, get_config, set_config
from ._group_norm import GroupNormalizer, group_norm
from ._layer_norm import LayerNormalizer, layer_norm
from ._rms_norm import RMSNormalizer, rms_norm
from ._show_versions import show_versions

__version__ = "0.1.0.dev0"

__all__ = [
    "GroupNormalizer",
    "LayerNormalizer",
    "RMSNormalizer",
    "config_context",
    "get_config",
    "group_norm",
    "layer_norm",
    "rms_norm",
    "set_config",
    "show_versions",
]
