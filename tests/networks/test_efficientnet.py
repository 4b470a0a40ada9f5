"""EfficientNet-Lite0 on real photos: ImageNet top-1, float32 against float64, preprocessing, the GEMM trace."""

from __future__ import annotations

import numpy as np
import pytest

from hfp8sim.errors import NetworkInputError
from hfp8sim.networks import Float32Ops, Float64Ops, RecordingOps, preprocess, read_legacy_pth
from hfp8sim.networks.efficientnet_lite0 import BLOCKS
from hfp8sim.networks.packages import efficientnet_lite0_weights_path

# ImageNet-1k class indices (real_networks.md section 2).
EXPECTED_TOP1 = {
    "chelsea": 282,  # tiger cat
    "coffee": 967,  # espresso
    "rocket": 657,  # missile
    "motorcycle_left": 665,  # moped
    "china": 698,  # palace
    "flower": 985,  # daisy
}
CATS = {281, 282, 283, 284, 285}  # tabby, tiger cat, Persian, Siamese, Egyptian cat


@pytest.fixture(scope="module")
def classified(efficientnet, photos):
    chosen = {name: photos[name] for name in EXPECTED_TOP1}
    return efficientnet.classify(chosen, ops=Float32Ops()), efficientnet.classify(chosen, ops=Float64Ops())


def test_top1_classes_of_real_photos(classified):
    result = classified[0]
    assert result.names == tuple(EXPECTED_TOP1)
    assert dict(zip(result.names, result.top1.tolist())) == EXPECTED_TOP1
    ranked = result.as_dict(k=3)
    assert {c for c, _ in ranked["chelsea"]} <= CATS  # the three best guesses for the cat are all cats
    assert ranked["coffee"][0][1] > 0.9  # espresso, confidently
    assert all(top[0][1] > 0.3 for top in ranked.values())
    np.testing.assert_allclose(result.probabilities.sum(axis=1), 1.0, rtol=0, atol=1e-12)


def test_float32_logits_equal_the_float64_reference(classified):
    f32, f64 = classified
    assert f32.logits.dtype == np.float32 and f64.logits.dtype == np.float64
    assert np.abs(f32.logits - f64.logits).max() < 1e-4
    assert np.abs(f32.probabilities - f64.probabilities).max() < 1e-5


def test_preprocessing_resizes_crops_and_normalises(photos):
    x = preprocess(photos["coffee"])  # 400x600 -> 256x384 -> central 224x224
    assert x.shape == (3, 224, 224) and x.dtype == np.float32
    assert x.min() >= -127 / 128 and x.max() <= 128 / 128
    flat = np.full((300, 500, 3), 191, dtype=np.uint8)
    np.testing.assert_array_equal(preprocess(flat), np.full((3, 224, 224), 0.5, dtype=np.float32))
    with pytest.raises(NetworkInputError, match="HxWx3 uint8 RGB"):
        preprocess(photos["coffee"].astype(np.float32))
    with pytest.raises(NetworkInputError, match="HxWx3 uint8 RGB"):
        preprocess(photos["coffee"][:, :, 0])


def _expected_macs_per_image() -> int:
    """MACs of one 224x224 image, from the weight shapes and TF SAME output sizes (ceil(H / stride))."""
    sd = read_legacy_pth(efficientnet_lite0_weights_path())

    def conv_macs(name: str, size: int) -> int:
        k, c_group, r, s = sd[name].shape
        return size * size * k * c_group * r * s

    size = 112  # after the stride-2 stem
    total = conv_macs("_conv_stem.weight", size)
    for i, (_, stride) in enumerate(BLOCKS):
        if f"_blocks.{i}._expand_conv.weight" in sd:
            total += conv_macs(f"_blocks.{i}._expand_conv.weight", size)
        size = -(-size // stride)
        total += conv_macs(f"_blocks.{i}._depthwise_conv.weight", size)
        total += conv_macs(f"_blocks.{i}._project_conv.weight", size)
    assert size == 7
    return total + conv_macs("_conv_head.weight", 7) + 1280 * 1000


def test_gemm_trace_names_and_macs(efficientnet, photos):
    recorder = RecordingOps(Float32Ops())
    logits = efficientnet.forward(preprocess(photos["rocket"])[None], ops=recorder)
    assert logits.shape == (1, 1000) and int(logits.argmax()) == 657
    names = [call.name for call in recorder.calls]
    assert names[:4] == ["stem", "blocks.0.depthwise", "blocks.0.project", "blocks.1.expand"]
    assert names[-3:] == ["blocks.15.project", "head", "fc"]
    assert len(names) == len(set(names)) == 1 + 2 + 15 * 3 + 2
    depthwise = {call.name: call for call in recorder.calls if call.name.endswith("depthwise")}
    assert (depthwise["blocks.3.depthwise"].count, depthwise["blocks.3.depthwise"].k) == (144, 25)  # 5x5, 1 channel
    assert recorder.total_macs == _expected_macs_per_image() == 385_187_552  # about 0.39 GMAC


def test_bad_inputs_are_refused(efficientnet):
    with pytest.raises(NetworkInputError, match=r"preprocessed \[N, 3, H, W\] batch"):
        efficientnet.forward(np.zeros((3, 224, 224), dtype=np.float32))
    with pytest.raises(NetworkInputError, match="at least one image"):
        efficientnet.classify([])
