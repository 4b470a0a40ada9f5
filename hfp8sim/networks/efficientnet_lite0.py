"""EfficientNet-Lite0 (ImageNet, 1000 classes) in numpy, with its convolutions routed through an ops object.

EfficientNet-Lite is EfficientNet-B0 made friendly to integer and low-precision hardware: no squeeze-excite,
ReLU6 instead of swish, a fixed stem (32) and head (1280).  The weights come from Google's TensorFlow
checkpoint, so the network uses TensorFlow's ``SAME`` padding (:func:`~hfp8sim.networks.ops.tf_same_padding`)
and TensorFlow's input normalisation ``(x - 127) / 128``; batch norm has eps 1e-3.

Layers and GEMM names (``ops`` sees each once per forward):

Batch norm is folded into the conv before it by default (:func:`~hfp8sim.networks.functional.fold_batch_norm`:
the folded weights are what an FP8 ops object quantizes, the folded bias is added after the conv);
``forward(..., fold_batch_norms=False)`` runs the trained weights and batch norm after the conv instead.

- ``stem``: 3x3 stride-2 conv 3 -> 32, BN, ReLU6;
- 16 MBConv blocks ``blocks.{i}``: ``blocks.{i}.expand`` 1x1 conv (absent in block 0, whose expansion is 1),
  BN, ReLU6; ``blocks.{i}.depthwise`` kxk conv with the block's stride, BN, ReLU6; ``blocks.{i}.project`` 1x1
  conv, BN (no activation); plus the input when the shape is unchanged (stride 1, same channels);
- ``head``: 1x1 conv to 1280, BN, ReLU6; global average pool; ``fc``: 1280 -> 1000 (matmul, with bias).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import NetworkInputError, WeightFileError
from .functional import batch_norm_affine, channel_affine, fold_batch_norm, relu6, softmax
from .legacy_pth import read_legacy_pth
from .ops import ACTIVATION, WEIGHT, Float32Ops, GemmOps, conv2d_bias, tf_same_padding

# (depthwise kernel, stride) of each MBConv block: EfficientNet-B0's stages of 1, 2, 2, 3, 3, 4, 1 blocks.
BLOCKS = ((3, 1),
          (3, 2), (3, 1),
          (5, 2), (5, 1),
          (3, 2), (3, 1), (3, 1),
          (5, 1), (5, 1), (5, 1),
          (5, 2), (5, 1), (5, 1), (5, 1),
          (3, 1))
BATCH_NORM_EPS = 1e-3
NUM_CLASSES = 1000

# Preprocessing (ImageNet evaluation as for the PyTorch port of these weights)
RESIZE_SHORTER_SIDE = 256
CROP_SIZE = 224
INPUT_MEAN = 127.0
INPUT_STD = 128.0


@dataclass(frozen=True)
class _ConvBN:
    weight: np.ndarray  # KCRS, as trained
    scale: np.ndarray  # unfolded: batch norm as a per-channel affine after the conv, in float
    shift: np.ndarray
    folded_weight: np.ndarray  # folded: batch norm's scale in the weights (before they are quantized) ...
    folded_bias: np.ndarray  # ... and its shift a bias added in the conv's output stage


@dataclass(frozen=True)
class _Block:
    expand: _ConvBN | None
    depthwise: _ConvBN
    project: _ConvBN
    kernel: int
    stride: int


@dataclass(frozen=True)
class _Weights:
    stem: _ConvBN
    blocks: tuple[_Block, ...]
    head: _ConvBN
    fc_weight: np.ndarray  # [1280, 1000]: the GEMM's [K, N]
    fc_bias: np.ndarray


def _prepare(tensors: Mapping[str, np.ndarray], dtype: np.dtype, source: str) -> _Weights:
    def get(name: str, ndim: int) -> np.ndarray:
        if name not in tensors:
            raise WeightFileError(source, f"has no tensor {name!r}; not an EfficientNet-Lite0 state_dict")
        value = tensors[name]
        if value.ndim != ndim:
            raise WeightFileError(source, f"tensor {name!r} has shape {value.shape}, expected {ndim} dimensions")
        return value

    def conv_bn(conv: str, bn: str) -> _ConvBN:
        weight = get(conv + ".weight", 4)
        stats = [get(f"{bn}.{field}", 1) for field in ("weight", "bias", "running_mean", "running_var")]
        if any(s.shape != (weight.shape[0],) for s in stats):
            raise WeightFileError(source, f"batch norm {bn!r} does not match the {weight.shape[0]} channels of {conv!r}")
        scale, shift = batch_norm_affine(*stats, BATCH_NORM_EPS, dtype)
        return _ConvBN(weight.astype(dtype), scale, shift, *fold_batch_norm(weight, None, *stats, BATCH_NORM_EPS,
                                                                             dtype))

    blocks = []
    for i, (kernel, stride) in enumerate(BLOCKS):
        p = f"_blocks.{i}."
        expand = conv_bn(p + "_expand_conv", p + "_bn0") if p + "_expand_conv.weight" in tensors else None
        depthwise = conv_bn(p + "_depthwise_conv", p + "_bn1")
        if depthwise.weight.shape[1:] != (1, kernel, kernel):
            raise WeightFileError(source, f"block {i} depthwise weight has shape {depthwise.weight.shape}, "
                                          f"EfficientNet-Lite0 has a {kernel}x{kernel} depthwise kernel there")
        blocks.append(_Block(expand, depthwise, conv_bn(p + "_project_conv", p + "_bn2"), kernel, stride))
    if f"_blocks.{len(BLOCKS)}._depthwise_conv.weight" in tensors:
        raise WeightFileError(source, f"has more than {len(BLOCKS)} blocks; not EfficientNet-Lite0", fix="")
    fc_weight = get("_fc.weight", 2)
    return _Weights(
        stem=conv_bn("_conv_stem", "_bn0"),
        blocks=tuple(blocks),
        head=conv_bn("_conv_head", "_bn1"),
        fc_weight=np.ascontiguousarray(fc_weight.T.astype(dtype)),
        fc_bias=get("_fc.bias", 1).astype(dtype),
    )


def _conv_same(ops: GemmOps, name: str, x: np.ndarray, layer: _ConvBN, stride: int = 1, groups: int = 1,
               fold: bool = True) -> np.ndarray:
    """The conv and its batch norm: folded (the conv on the folded weights, then the bias), or unfolded (the
    conv on the trained weights, then the batch norm's scale and shift)."""
    kernel = layer.weight.shape[2:]
    padding = tf_same_padding(x.shape[2], x.shape[3], kernel, (stride, stride))
    if fold:
        return conv2d_bias(ops, name, x, layer.folded_weight, layer.folded_bias, (stride, stride), padding, (1, 1),
                           groups)
    out = ops.conv2d(name, x, layer.weight, (stride, stride), padding, (1, 1), groups)
    return channel_affine(out, layer.scale, layer.shift)


def preprocess(image: np.ndarray) -> np.ndarray:
    """An HxWx3 uint8 RGB photo -> the 3x224x224 float32 network input.

    Resize so the shorter side is 256 with Pillow's bilinear filter (which, like torchvision's ``Resize`` on
    PIL images, widens its support to antialias when shrinking), take the central 224x224 (the offset rounded
    down), then ``(x - 127) / 128`` per channel.
    """
    from .packages import require

    require("pillow")
    from PIL import Image

    image = _check_image(image)
    height, width = image.shape[:2]
    factor = RESIZE_SHORTER_SIDE / min(height, width)
    new_width, new_height = max(CROP_SIZE, round(width * factor)), max(CROP_SIZE, round(height * factor))
    resized = Image.fromarray(image).resize((new_width, new_height), Image.Resampling.BILINEAR)
    left, top = (new_width - CROP_SIZE) // 2, (new_height - CROP_SIZE) // 2
    crop = np.asarray(resized, dtype=np.float32)[top:top + CROP_SIZE, left:left + CROP_SIZE]
    return ((crop - INPUT_MEAN) / INPUT_STD).transpose(2, 0, 1).copy()


def _check_image(image: object) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        described = (f"{image.dtype} array of shape {image.shape}" if isinstance(image, np.ndarray)
                     else type(image).__name__)
        raise NetworkInputError(f"images must be HxWx3 uint8 RGB arrays, got a {described} "
                                "(convert grey or RGBA images to RGB first)")
    return np.ascontiguousarray(image)


@dataclass(frozen=True)
class Classification:
    """Results of classifying named images: logits, softmax probabilities (float64) and ranked classes."""

    names: tuple[str, ...]
    logits: np.ndarray  # [N, 1000]
    probabilities: np.ndarray  # [N, 1000]

    @property
    def top1(self) -> np.ndarray:
        return self.logits.argmax(axis=1)

    def top_k(self, k: int = 5) -> np.ndarray:
        """Class indices ``[N, k]``, most probable first."""
        return np.argsort(-self.logits, axis=1, kind="stable")[:, :k]

    def as_dict(self, k: int = 5) -> dict[str, list[tuple[int, float]]]:
        """``{name: [(class, probability), ...]}`` for the top ``k`` classes of each image."""
        ranked = self.top_k(k)
        return {name: [(int(c), float(self.probabilities[i, c])) for c in ranked[i]]
                for i, name in enumerate(self.names)}


class EfficientNetLite0:
    """EfficientNet-Lite0 from its state_dict; ``classify`` takes photos, ``forward`` preprocessed batches."""

    def __init__(self, tensors: Mapping[str, np.ndarray], source: str = "weights"):
        self.source = source
        self._tensors = tensors
        self._by_dtype: dict[np.dtype, _Weights] = {}
        self._weights(np.dtype(np.float32))  # validate names and shapes now, not at the first forward

    @classmethod
    def from_pth(cls, path: str | Path) -> EfficientNetLite0:
        return cls(read_legacy_pth(path), source=str(path))

    def _weights(self, dtype: np.dtype) -> _Weights:
        if dtype not in self._by_dtype:
            self._by_dtype[dtype] = _prepare(self._tensors, dtype, self.source)
        return self._by_dtype[dtype]

    def forward(self, images: np.ndarray, ops: GemmOps | None = None, fold_batch_norms: bool = True) -> np.ndarray:
        """Logits ``[N, 1000]`` of a preprocessed NCHW batch (``[N, 3, 224, 224]`` from :func:`preprocess`).

        ``fold_batch_norms`` (the default, as deployed): each conv runs on its batch-norm-folded weights and adds
        the folded bias; False runs the trained weights with batch norm after the conv, for comparison."""
        ops = ops if ops is not None else Float32Ops()
        if not isinstance(images, np.ndarray) or images.ndim != 4 or images.shape[1] != 3:
            shape = getattr(images, "shape", None)
            raise NetworkInputError(f"forward wants a preprocessed [N, 3, H, W] batch, got shape {shape} "
                                    "(use classify() for photos)")
        weights = self._weights(np.dtype(ops.float_dtype))
        x = images.astype(weights.fc_weight.dtype, copy=False)
        fold = bool(fold_batch_norms)
        x = relu6(_conv_same(ops, "stem", x, weights.stem, stride=2, fold=fold))
        for i, block in enumerate(weights.blocks):
            block_input = x
            if block.expand is not None:
                x = relu6(_conv_same(ops, f"blocks.{i}.expand", x, block.expand, fold=fold))
            x = relu6(_conv_same(ops, f"blocks.{i}.depthwise", x, block.depthwise, stride=block.stride,
                                 groups=x.shape[1], fold=fold))
            x = _conv_same(ops, f"blocks.{i}.project", x, block.project, fold=fold)
            if x.shape == block_input.shape:  # stride 1 and unchanged channels: identity skip
                x = x + block_input
        x = relu6(_conv_same(ops, "head", x, weights.head, fold=fold))
        pooled = x.mean(axis=(2, 3))
        return ops.matmul("fc", pooled, weights.fc_weight, ACTIVATION, WEIGHT) + weights.fc_bias

    def classify(self, images: Mapping[str, np.ndarray] | Sequence[np.ndarray], ops: GemmOps | None = None,
                 batch_size: int = 8, fold_batch_norms: bool = True) -> Classification:
        """Preprocess and classify HxWx3 uint8 photos (a name -> image mapping, or a list named by index);
        ``fold_batch_norms`` as for :meth:`forward`."""
        if isinstance(images, Mapping):
            names, photos = tuple(images), list(images.values())
        else:
            photos = list(images)
            names = tuple(str(i) for i in range(len(photos)))
        if not photos:
            raise NetworkInputError("classify wants at least one image")
        if batch_size < 1:
            raise NetworkInputError(f"batch_size must be at least 1, got {batch_size}")
        inputs = np.stack([preprocess(photo) for photo in photos])
        logits = np.concatenate([self.forward(inputs[i:i + batch_size], ops, fold_batch_norms)
                                 for i in range(0, len(inputs), batch_size)])
        return Classification(names, logits, softmax(logits.astype(np.float64), axis=1))
