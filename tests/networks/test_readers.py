"""safetensors and legacy torch readers: hand-made files with known contents, corrupt files, the real files."""

from __future__ import annotations

import collections
import hashlib
import json
import pickle
import struct
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from hfp8sim.errors import Hfp8SimError, WeightFileError
from hfp8sim.networks import read_legacy_pth, read_safetensors
from hfp8sim.networks.packages import efficientnet_lite0_weights_path, minilm_model_dir

# ---------------------------------------------------------------------------------------------------- safetensors


def write_safetensors(path: Path, entries: dict[str, tuple[str, list[int], bytes]], metadata=None) -> Path:
    """Write {name: (dtype tag, shape, raw bytes)} in the safetensors layout, header padded to 8 bytes."""
    header: dict = {"__metadata__": metadata or {"format": "pt"}}
    offset = 0
    for name, (tag, shape, raw) in entries.items():
        header[name] = {"dtype": tag, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(raw for _, _, raw in entries.values()))
    return path


def test_safetensors_round_trip_of_every_kind_of_dtype(tmp_path):
    matrix = np.arange(6, dtype="<f4").reshape(2, 3) / 4
    ids = np.array([[0, 1, 2**40]], dtype="<i8")
    half = np.array([1.5, -0.25], dtype="<f2")
    path = write_safetensors(tmp_path / "t.safetensors", {
        "matrix": ("F32", [2, 3], matrix.tobytes()),
        "ids": ("I64", [1, 3], ids.tobytes()),
        "half": ("F16", [2], half.tobytes()),
        # bfloat16 codes of 1.0, -2.5, 3.140625 (the top half of their float32 bits)
        "bf16": ("BF16", [3], np.array([0x3F80, 0xC020, 0x4049], dtype="<u2").tobytes()),
        # float8_e4m3fn codes of 1.0, 448 (its max) and 2**-9 (its smallest subnormal)
        "e4m3": ("F8_E4M3", [3], bytes([0x38, 0x7E, 0x01])),
        # float8_e5m2 codes of 1.0 and 57344 (its max)
        "e5m2": ("F8_E5M2", [2], bytes([0x3C, 0x7B])),
        "scalar": ("F64", [], np.array(2.5).tobytes()),
        "empty": ("F32", [0, 4], b""),
    })
    t = read_safetensors(path)
    assert list(t) == ["matrix", "ids", "half", "bf16", "e4m3", "e5m2", "scalar", "empty"]
    np.testing.assert_array_equal(t["matrix"], matrix)
    assert t["ids"].dtype == np.int64 and t["ids"][0, 2] == 2**40
    np.testing.assert_array_equal(t["half"], half)
    np.testing.assert_array_equal(t["bf16"], np.array([1.0, -2.5, 3.140625], dtype=np.float32))
    np.testing.assert_array_equal(t["e4m3"], np.array([1.0, 448.0, 2.0**-9], dtype=np.float32))
    np.testing.assert_array_equal(t["e5m2"], np.array([1.0, 57344.0], dtype=np.float32))
    assert t["scalar"].shape == () and t["scalar"] == 2.5
    assert t["empty"].shape == (0, 4)
    assert list(read_safetensors(path, names=["ids"])) == ["ids"]


@pytest.mark.parametrize("damage, message", [
    (lambda raw: raw[:5], "too short for a safetensors file"),
    (lambda raw: struct.pack("<Q", 10**9) + raw[8:], "header length 1000000000 does not fit"),
    (lambda raw: raw[:8] + b"x" + raw[9:], "header is not valid JSON"),
    (lambda raw: raw[:-4], "fall outside the"),
])
def test_corrupt_safetensors_raise_one_clear_error(tmp_path, damage, message):
    good = write_safetensors(tmp_path / "good.safetensors",
                             {"w": ("F32", [4], np.ones(4, dtype="<f4").tobytes())}).read_bytes()
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(damage(good))
    with pytest.raises(WeightFileError, match=message) as caught:
        read_safetensors(bad)
    assert isinstance(caught.value, Hfp8SimError) and str(bad) in str(caught.value)


def test_safetensors_header_inconsistencies_are_named(tmp_path):
    unknown = write_safetensors(tmp_path / "u.safetensors", {"w": ("F4", [2], b"\x00")})
    with pytest.raises(WeightFileError, match=r"tensor 'w': unsupported dtype 'F4'"):
        read_safetensors(unknown)
    short = write_safetensors(tmp_path / "s.safetensors", {"w": ("F32", [3], b"\x00" * 8)})
    with pytest.raises(WeightFileError, match=r"8 bytes do not hold shape \[3\] of F32"):
        read_safetensors(short)
    with pytest.raises(WeightFileError, match="has no tensor 'nope'"):
        read_safetensors(short, names=["nope"])
    with pytest.raises(WeightFileError, match="no such file"):
        read_safetensors(tmp_path / "missing.safetensors")


def test_real_minilm_safetensors_is_the_upstream_file():
    path = minilm_model_dir() / "model.safetensors"
    # sha256 of sentence-transformers/all-MiniLM-L6-v2's model.safetensors (real_networks.md section 1)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == \
        "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
    t = read_safetensors(path)
    assert len(t) == 104  # 5 embedding tensors + position_ids, 16 per layer x 6, pooler weight and bias
    assert t["embeddings.word_embeddings.weight"].shape == (30522, 384)
    assert t["encoder.layer.5.intermediate.dense.weight"].shape == (1536, 384)
    assert t["embeddings.position_ids"].dtype == np.int64
    np.testing.assert_array_equal(t["embeddings.position_ids"][0, :5], [0, 1, 2, 3, 4])
    assert sum(v.size for k, v in t.items() if v.dtype == np.float32) == 22_713_216


# ------------------------------------------------------------------------------------------------ legacy torch


class _FakeStorage:
    def __init__(self, key: str, kind: type, values: np.ndarray):
        self.key, self.kind, self.values = key, kind, values


class _FakeTensor:
    def __init__(self, storage: _FakeStorage, offset: int, size: tuple, stride: tuple):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def __reduce__(self):
        rebuild = sys.modules["torch._utils"]._rebuild_tensor_v2
        return rebuild, (self.storage, self.offset, self.size, self.stride, False, collections.OrderedDict())


@pytest.fixture
def fake_torch(monkeypatch):
    """Just enough of a `torch` module for pickle to write the globals a real torch.save writes."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")
    for name in ("FloatStorage", "LongStorage", "HalfStorage"):
        setattr(torch, name, type(name, (), {"__module__": "torch"}))

    def _rebuild_tensor_v2(*args):
        raise AssertionError("only pickled, never called")

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    torch._utils = utils
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return torch


def write_legacy_pth(path: Path, state_dict: dict, storages: list[_FakeStorage]) -> Path:
    """The byte layout of torch's legacy (_use_new_zipfile_serialization=False) save."""

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, _FakeStorage):
                return ("storage", obj.kind, obj.key, "cpu", obj.values.size, None)
            return None

    with path.open("wb") as f:
        for header in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True}):
            pickle.dump(header, f, protocol=2)
        Pickler(f, protocol=2).dump(collections.OrderedDict(state_dict))
        pickle.dump(sorted(s.key for s in storages), f, protocol=2)
        for storage in sorted(storages, key=lambda s: s.key):
            f.write(struct.pack("<q", storage.values.size))
            f.write(storage.values.tobytes())
    return path


def test_legacy_pth_tensors_follow_offset_size_and_stride(tmp_path, fake_torch):
    shared = _FakeStorage("101", fake_torch.FloatStorage, np.arange(10, dtype="<f4"))
    counts = _FakeStorage("7", fake_torch.LongStorage, np.array([42], dtype="<i8"))
    halves = _FakeStorage("8", fake_torch.HalfStorage, np.array([0.5, 3.0], dtype="<f2"))
    path = write_legacy_pth(tmp_path / "sd.pth", {
        "first": _FakeTensor(shared, 0, (2,), (1,)),
        "matrix_t": _FakeTensor(shared, 2, (3, 2), (1, 3)),  # a transposed 2x3 view starting at element 2
        "count": _FakeTensor(counts, 0, (), ()),
        "half": _FakeTensor(halves, 0, (2,), (1,)),
    }, [shared, counts, halves])
    sd = read_legacy_pth(path)
    assert list(sd) == ["first", "matrix_t", "count", "half"]
    np.testing.assert_array_equal(sd["first"], [0.0, 1.0])
    np.testing.assert_array_equal(sd["matrix_t"], [[2.0, 5.0], [3.0, 6.0], [4.0, 7.0]])
    assert sd["matrix_t"].flags.c_contiguous and sd["matrix_t"].dtype == np.float32
    assert sd["count"].shape == () and sd["count"] == 42 and sd["count"].dtype == np.int64
    np.testing.assert_array_equal(sd["half"], np.array([0.5, 3.0], dtype=np.float16))


def test_legacy_pth_refuses_globals_a_state_dict_does_not_need(tmp_path, fake_torch):
    storage = _FakeStorage("1", fake_torch.FloatStorage, np.ones(2, dtype="<f4"))
    path = write_legacy_pth(tmp_path / "evil.pth", {"w": _FakeTensor(storage, 0, (2,), (1,)),
                                                    "extra": collections.Counter("ab")}, [storage])
    with pytest.raises(WeightFileError, match="refers to collections.Counter, which a plain state_dict never needs"):
        read_legacy_pth(path)


def test_legacy_pth_damaged_files(tmp_path, fake_torch):
    storage = _FakeStorage("1", fake_torch.FloatStorage, np.ones(4, dtype="<f4"))
    good = write_legacy_pth(tmp_path / "good.pth", {"w": _FakeTensor(storage, 0, (4,), (1,))}, [storage])
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(good.read_bytes()[:-3])
    with pytest.raises(WeightFileError, match="storage '1' is cut short; the file is truncated"):
        read_legacy_pth(truncated)
    zipped = tmp_path / "new_format.pth"
    zipped.write_bytes(b"PK\x03\x04" + b"\x00" * 60)
    with pytest.raises(WeightFileError, match="zip-based torch file"):
        read_legacy_pth(zipped)
    text = tmp_path / "notes.pth"
    text.write_bytes(b"just some text, not a pickle")
    with pytest.raises(WeightFileError, match="not a torch file|not a legacy .pth file"):
        read_legacy_pth(text)
    wrong_magic = tmp_path / "other.pth"
    wrong_magic.write_bytes(pickle.dumps(12345, protocol=2))
    with pytest.raises(WeightFileError, match="does not start with the legacy torch magic number"):
        read_legacy_pth(wrong_magic)
    out_of_range = write_legacy_pth(tmp_path / "range.pth", {"w": _FakeTensor(storage, 2, (4,), (1,))}, [storage])
    with pytest.raises(WeightFileError, match="reaches element 5 of a 4-element storage"):
        read_legacy_pth(out_of_range)


def test_real_efficientnet_lite0_state_dict():
    path = efficientnet_lite0_weights_path()
    # torch hub names a checkpoint after the first 8 hex digits of its sha256: the file is intact.
    assert hashlib.sha256(path.read_bytes()).hexdigest().startswith("57934424")
    sd = read_legacy_pth(path)
    assert len(sd) == 296
    assert sum(v.size for v in sd.values() if v.dtype == np.float32) == 4_694_024
    assert sum(1 for k in sd if k.endswith("num_batches_tracked")) == 49  # one per batch norm
    assert sd["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert sd["_blocks.15._depthwise_conv.weight"].shape == (1152, 1, 3, 3)
    assert sd["_fc.weight"].shape == (1000, 1280)
    assert all(np.isfinite(v).all() for v in sd.values())
