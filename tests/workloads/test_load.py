"""The YAML workload format: features (defaults, repeat, inference, writing back) and clear errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from hfp8sim.errors import ConfigError, WorkloadError
from hfp8sim.workloads import (
    OPS,
    Concat,
    Conv2d,
    Elementwise,
    MatMul,
    Pool,
    Softmax,
    import_onnx,
    import_scalesim_csv,
    load_workload,
    parse_workload_text,
    save_workload,
    shipped_workloads,
)


def _write(tmp_path: Path, text: str, name: str = "net.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def _error(tmp_path: Path, text: str) -> str:
    path = _write(tmp_path, text)
    with pytest.raises(WorkloadError) as info:
        load_workload(path)
    assert isinstance(info.value, ConfigError)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message  # every error names the file first
    return message[len(str(path)) + 2 :]


# ------------------------------------------------------------------------------------------ features


def test_inputs_default_to_the_previous_layer_and_sizes_are_inferred(tmp_path):
    net = load_workload(_write(tmp_path, """
        name: small
        source: test
        notes: a note
        layers:
          - {name: conv1, op: conv2d, C: 3, H: 32, W: 32, K: 16, R: 3, S: 3, padding: 1}
          - {name: relu1, op: relu}
          - {name: dw, op: conv2d, K: 16, R: 3, S: 3, stride: 2, padding: same, groups: 16}
          - {name: pool, op: maxpool, R: 2, S: 2, stride: 2}
          - {name: add, op: add, inputs: [pool, pool]}
          - {name: gap, op: global_avgpool}
          - {name: fc, op: matmul, M: 1, N: 10, K: 16}
          - {name: prob, op: softmax}
        """))  # fmt: skip
    assert (net.name, net.source, net.notes) == ("small", "test", "a note")
    assert net["conv1"].inputs == (None,)  # the first layer reads the network input
    assert net["relu1"] == Elementwise(name="relu1", kind="relu", shape=(1, 16, 32, 32), inputs=("conv1",))
    dw = net["dw"]
    assert isinstance(dw, Conv2d) and (dw.N, dw.C, dw.H, dw.W) == (1, 16, 32, 32) and dw.padding == (0, 1, 0, 1)
    assert net["pool"] == Pool(name="pool", kind="maxpool", C=16, H=16, W=16, R=2, S=2, stride=2, inputs=("dw",))
    assert net["add"].inputs == ("pool", "pool") and net["add"].shape == (1, 16, 8, 8)
    assert net["prob"] == Softmax(name="prob", rows=1, cols=10, inputs=("fc",))
    assert net.macs == 1024 * 16 * 27 + 256 * 16 * 9 + 160


def test_defaults_section_and_pass_key(tmp_path):
    net = load_workload(_write(tmp_path, """
        name: d
        defaults:
          matmul: {batch: 4, b_role: activation}
        layers:
          - {name: a, op: matmul, M: 8, N: 8, K: 8, inputs: [null, null]}
          - {name: b, op: matmul, M: 8, N: 8, K: 8, b_role: weight, batch: 1, input: null, pass: backward_data}
        """))  # fmt: skip
    assert (net["a"].batch, net["a"].b_role, net["a"].inputs) == (4, "activation", (None, None))
    assert (net["b"].batch, net["b"].b_role, net["b"].pass_) == (1, "weight", "backward_data")


def test_repeat_blocks_expand_with_index_and_block_input(tmp_path):
    net = load_workload(_write(tmp_path, """
        name: r
        layers:
          - {name: embed, op: embedding, lookups: 4, dim: 8, vocab: 10}
          - repeat: 3
            index: n
            layers:
              - {name: "blk{n}.fc", op: matmul, M: 4, N: 8, K: 8}
              - {name: "blk{n}.add", op: add, inputs: ["blk{n}.fc", "{block_input}"]}
              - repeat: 2
                layers:
                  - {name: "blk{n}.inner{i}", op: relu}
          - {name: head, op: matmul, M: 4, N: 2, K: 8}
        """))  # fmt: skip
    assert net.names == (
        "embed",
        "blk0.fc", "blk0.add", "blk0.inner0", "blk0.inner1",
        "blk1.fc", "blk1.add", "blk1.inner0", "blk1.inner1",
        "blk2.fc", "blk2.add", "blk2.inner0", "blk2.inner1",
        "head",
    )  # fmt: skip
    assert net["blk0.add"].inputs == ("blk0.fc", "embed")
    assert net["blk2.add"].inputs == ("blk2.fc", "blk1.inner1")
    assert net["blk1.fc"].inputs == ("blk0.inner1",)
    assert net.macs == 3 * 4 * 8 * 8 + 4 * 2 * 8


def test_concat_reshape_and_views(tmp_path):
    net = load_workload(_write(tmp_path, """
        name: v
        layers:
          - {name: patches, op: conv2d, C: 3, H: 32, W: 32, K: 8, R: 16, S: 16, stride: 16}
          - {name: flat, op: reshape, shape: [4, 8]}
          - {name: cls, op: embedding, lookups: 1, dim: 8, vocab: 1}
          - {name: tokens, op: concat, inputs: [cls, flat], axis: 0}
          - {name: head, op: matmul, M: 1, N: 3, K: 8}
        """))  # fmt: skip
    assert net["tokens"] == Concat(name="tokens", shape=(5, 8), axis=0, inputs=("cls", "flat"))
    assert isinstance(net["head"], MatMul) and net["head"].inputs == ("tokens",)


@pytest.mark.parametrize("name", sorted(shipped_workloads()))
def test_writing_a_network_back_gives_an_equal_network(tmp_path, name):
    net = load_workload(shipped_workloads()[name])
    again = load_workload(save_workload(net, tmp_path / f"{name}.yaml"))
    assert again.layers == net.layers and (again.name, again.source, again.notes) == (net.name, net.source, net.notes)


def test_imported_networks_can_be_saved_and_reloaded(tmp_path, light_models, scalesim_topologies):
    for net in (import_onnx(light_models / "light_shufflenet.onnx"),
                import_scalesim_csv(scalesim_topologies / "mobilenet.csv")):  # fmt: skip
        path = save_workload(net, tmp_path / f"{net.name}.yaml")
        assert load_workload(path).layers == net.layers
    text = (tmp_path / "shufflenet.yaml").read_text()
    assert "op: conv2d" in text and "groups: 4" in text


# -------------------------------------------------------------------------------------------- errors


def test_missing_file(tmp_path):
    with pytest.raises(WorkloadError) as info:
        load_workload(tmp_path / "absent.yaml")
    assert str(info.value) == f"{tmp_path / 'absent.yaml'}: workload file not found"
    with pytest.raises(WorkloadError, match="not a file"):
        load_workload(tmp_path)


def test_malformed_yaml_names_the_line(tmp_path):
    message = _error(tmp_path, "name: x\nlayers:\n  - {name: a, op: relu\n  - {name: b}\n")
    assert message == "line 4, column 5: invalid YAML: expected ',' or '}', but got '{'"


def test_duplicate_yaml_key(tmp_path):
    message = _error(tmp_path, "name: x\nlayers:\n  - {name: a, op: relu, op: gelu, shape: [2]}\n")
    assert message == "line 3, column 25: invalid YAML: duplicate key 'op'"


def test_unknown_op_lists_the_ops(tmp_path):
    message = _error(tmp_path, """
        name: x
        layers:
          - {name: c1, op: conv2d, C: 3, H: 8, W: 8, K: 4, R: 3, S: 3}
          - {name: layer1.conv, op: conv, K: 4, R: 3, S: 3}
        """)  # fmt: skip
    assert message == (
        f"layers[1] (layer1.conv): unknown op 'conv' (did you mean 'conv2d'?); known ops: {', '.join(OPS)}"
    )
    assert "global_avgpool" in OPS and "softmax" in OPS and len(OPS) == 25


def test_unknown_key_suggests_the_right_one(tmp_path):
    message = _error(tmp_path, """
        name: x
        layers:
          - {name: conv1, op: conv2d, C: 3, H: 8, W: 8, K: 4, R: 3, S: 3, strides: 2}
        """)  # fmt: skip
    assert message == "layers[0] (conv1).strides: unknown key (did you mean 'stride'?)"


def test_every_type_problem_is_reported_at_once(tmp_path):
    message = _error(tmp_path, """
        name: x
        layers:
          - {name: conv1, op: conv2d, C: 3, H: -8, W: 8, K: 4, R: 3, S: 3}
          - {name: fc, op: matmul, M: 0, N: 2, K: 1.5}
          - {name: soft, op: softmax, rows: "4"}
          - {op: relu}
        """)  # fmt: skip
    assert message == (
        "5 problems: layers[0] (conv1).H: must be a positive integer, got -8; "
        "layers[1] (fc).M: must be a positive integer, got 0; layers[1] (fc).K: must be an integer, got 1.5; "
        "layers[2] (soft).rows: must be an integer, got '4'; layers[3].name: required key is missing"
    )


def test_channel_mismatch_names_both_layers(tmp_path):
    message = _error(tmp_path, """
        name: x
        layers:
          - {name: layer2.3.conv3, op: conv2d, C: 128, H: 28, W: 28, K: 512, R: 1, S: 1}
          - {name: layer2.3.add, op: add, inputs: [layer2.3.conv3, layer2.3.conv3]}
          - {name: layer3.0.conv1, op: conv2d, C: 128, H: 28, W: 28, K: 256, R: 1, S: 1}
        """)  # fmt: skip
    assert message == "layers[2] (layer3.0.conv1): C=128 but its input layer2.3.add gives 512 channels"


def test_spatial_mismatch_and_matmul_feature_mismatch(tmp_path):
    spatial = _error(tmp_path, """
        name: x
        layers:
          - {name: c1, op: conv2d, C: 3, H: 8, W: 8, K: 4, R: 3, S: 3}
          - {name: c2, op: conv2d, C: 4, H: 8, W: 8, K: 4, R: 3, S: 3}
        """)  # fmt: skip
    assert spatial == "layers[1] (c2): H,W=8,8 but its input c1 gives 6,6"
    features = _error(tmp_path, """
        name: x
        layers:
          - {name: ln, op: layernorm, shape: [128, 768]}
          - {name: fc, op: matmul, M: 128, N: 3072, K: 512}
        """)  # fmt: skip
    assert features == "layers[1] (fc): K=512 but its input ln gives 768 features"


def test_errors_inside_repeat_blocks_give_the_path_in_the_file(tmp_path):
    message = _error(tmp_path, """
        name: x
        layers:
          - {name: ln, op: layernorm, shape: [4, 8]}
          - repeat: 2
            layers:
              - {name: "b{i}.fc", op: matmul, M: 4, N: 16, K: 8}
        """)  # fmt: skip
    assert message == "layers[1] (iteration 1).layers[0] (b1.fc): K=8 but its input b0.fc gives 16 features"


@pytest.mark.parametrize(
    ("layers", "expected"),
    [
        ("- {name: a, op: relu, shape: [4]}\n- {name: s, op: add}",
         "layers[1] (s): add needs 'inputs:' naming its operands (e.g. both branches of a residual add)"),
        ("- {name: a, op: relu, shape: [4]}\n- {name: s, op: add, inputs: [a, r]}\n- {name: r, op: relu}",
         "layers[1] (s): input 'r' is defined later; a layer must come after its inputs"),
        ("- {name: conv1, op: relu, shape: [4]}\n- {name: s, op: relu, input: conv2}",
         "layers[1] (s): input 'conv2' is not a layer of this network (did you mean 'conv1'?)"),
        ("- {name: a, op: relu, shape: [4]}\n- {name: a, op: relu}", "layers[1] (a): duplicate layer name"),
        ("- {name: c, op: conv2d, K: 4, R: 3, S: 3}",
         "layers[0] (c): C, H, W must be given: it reads the network input"),
        ("- {name: c, op: conv2d, C: 3, H: 8, W: 8, K: 4, R: 3, S: 3, groups: 2}",
         "layers[0] (c): groups=2 must divide both C=3 and K=4"),
        ("- {name: c, op: conv2d, C: 3, H: 8, W: 8, K: 4, R: 3, S: 3, padding: [1, 2, 3]}",
         'layers[0] (c): padding must be an integer, [h, w], [top, bottom, left, right] or "same", got (1, 2, 3)'),
        ("- {name: q, op: matmul, M: 4, N: 4, K: 4, b_role: activation}",
         "layers[0] (q): a matmul with two activation operands needs 'inputs: [a_producer, b_producer]' "
         "(null for an operand from outside the network)"),
        ("- {name: a, op: relu, shape: [4], input: x, inputs: [x]}",
         "layers[0] (a): give either 'input' or 'inputs', not both"),
        ("- {name: a, op: relu, shape: [4], pass: backwards}",
         "layers[0] (a).pass: input should be 'forward', 'backward_data' or 'backward_weight'"),
        ("- [relu]", "layers[0]: a layer is a mapping with 'name' and 'op', got ['relu']"),
        ("- {name: a}", "layers[0] (a): required key 'op' is missing; known ops: " + ", ".join(OPS)),
        ("- {repeat: 0, layers: []}",
         "2 problems: layers[0].repeat: must be a positive integer, got 0; layers[0].layers: list should have at "
         "least 1 item after validation, not 0"),
    ],
)  # fmt: skip
def test_layer_errors(tmp_path, layers, expected):
    text = "name: x\nlayers:\n" + textwrap.indent(layers, "  ") + "\n"
    path = tmp_path / "net.yaml"
    path.write_text(text)
    with pytest.raises(WorkloadError) as info:
        load_workload(path)
    assert str(info.value) == f"{path}: {expected}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "a workload file is a mapping with 'name' and 'layers' (got an empty file)"),
        ("- a\n", "a workload file is a mapping with 'name' and 'layers' (got list)"),
        ("name: x\nlayerz: []\n",
         "2 problems: layers: required key is missing; layerz: unknown key (did you mean 'layers'?)"),
        ("name: x\nlayers: []\n", "layers: list should have at least 1 item after validation, not 0"),
        ("name: x\ndefaults:\n  conv2d: {Kx: 3}\n  foo: {}\nlayers:\n  - {name: a, op: relu, shape: [1]}\n",
         "2 problems: defaults.conv2d.Kx: not a field a default can set for conv2d (did you mean 'K'?); "
         f"defaults.foo: unknown op; known ops: {', '.join(OPS)}"),
    ],
)  # fmt: skip
def test_file_level_errors(text, expected):
    with pytest.raises(WorkloadError) as info:
        parse_workload_text(text, "w.yaml")
    assert str(info.value) == f"w.yaml: {expected}"
