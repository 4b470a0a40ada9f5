"""Reader for legacy (pre-1.6, non-zip) ``torch.save`` files holding a state_dict, without torch.

Layout of such a file: five consecutive pickles (magic number, protocol version 1001, a sys-info dict, the saved
object, the sorted list of storage keys), then for each key in that list the raw storage: an 8-byte element count
followed by the elements.  In the object pickle each tensor is ``torch._utils._rebuild_tensor_v2(storage,
offset, size, stride, ...)`` and each storage a *persistent id* ``('storage', <torch.XStorage>, key, location,
numel, view_metadata)``.

Unpickling runs code named by the file, so the unpickler here resolves only the few names a state_dict needs
(OrderedDict, the tensor rebuild functions, the storage types) to harmless stand-ins, and refuses every other
global.  Tensors are then cut out of the raw storages with their offset, size and stride.
"""

from __future__ import annotations

import collections
import math
import pickle
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..errors import WeightFileError

LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL_VERSION = 1001
_ZIP_MAGIC = b"PK\x03\x04"

# torch storage class -> element dtype (byte order applied later from the file's sys-info)
_STORAGE_DTYPES = {
    "DoubleStorage": "f8", "FloatStorage": "f4", "HalfStorage": "f2", "BFloat16Storage": "u2",
    "LongStorage": "i8", "IntStorage": "i4", "ShortStorage": "i2", "CharStorage": "i1",
    "ByteStorage": "u1", "BoolStorage": "?",
}


@dataclass(frozen=True)
class _StorageType:
    name: str


@dataclass(frozen=True)
class _StorageRef:
    key: str
    storage_type: str
    numel: int
    view_offset: int  # a storage saved as a view of a larger root storage starts here
    view_numel: int | None


@dataclass(frozen=True)
class _TensorRef:
    storage: _StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor(storage, storage_offset, size, stride):
    return _TensorRef(storage, int(storage_offset), tuple(int(d) for d in size), tuple(int(s) for s in stride))


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    return _rebuild_tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    return data


_ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class _RefusedGlobal(Exception):
    pass


class _StateDictUnpickler(pickle.Unpickler):
    """Resolves only the names a state_dict needs; everything else is refused, never imported."""

    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED_GLOBALS:
            return _ALLOWED_GLOBALS[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise _RefusedGlobal(f"{module}.{name}")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType)):
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r:.80}")
        storage_type, key, numel = pid[1], str(pid[2]), int(pid[4])
        view = pid[5] if len(pid) > 5 else None
        if view is not None:  # (view_key, offset, view_numel): a slice of the root storage `key`
            return _StorageRef(key, storage_type.name, numel, int(view[1]), int(view[2]))
        return _StorageRef(key, storage_type.name, numel, 0, None)


def read_legacy_pth(path: str | Path) -> dict[str, np.ndarray]:
    """The tensors of a legacy ``torch.save`` state_dict file, as ``{name: np.ndarray}`` in saved order.

    A checkpoint that wraps the state_dict as ``{"state_dict": {...}}`` is unwrapped.  Non-tensor entries are
    dropped.  BFloat16 tensors are decoded to float32 exactly.
    """
    path = Path(path)
    try:
        with path.open("rb") as stream:
            if stream.read(4) == _ZIP_MAGIC:
                raise WeightFileError(path, "is a zip-based torch file (torch >= 1.6 format); only the legacy "
                                            "non-zip format is supported", fix="save it with "
                                            "_use_new_zipfile_serialization=False or convert it to safetensors")
            stream.seek(0)
            return _read(path, stream)
    except FileNotFoundError:
        raise WeightFileError(path, "no such file") from None


def _load_pickle(path: Path, stream: BinaryIO, what: str):
    try:
        return _StateDictUnpickler(stream).load()
    except _RefusedGlobal as exc:
        raise WeightFileError(path, f"{what} refers to {exc}, which a plain state_dict never needs; refusing to "
                                    "unpickle it", fix="") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError, AttributeError,
            UnicodeDecodeError, struct.error) as exc:
        raise WeightFileError(path, f"cannot read the {what} ({type(exc).__name__}: {exc}); the file is "
                                    "corrupt, truncated or not a torch file") from None


def _read(path: Path, stream: BinaryIO) -> dict[str, np.ndarray]:
    magic = _load_pickle(path, stream, "magic number")
    if magic != LEGACY_MAGIC_NUMBER:
        raise WeightFileError(path, "does not start with the legacy torch magic number; not a legacy .pth file",
                              fix="")
    protocol = _load_pickle(path, stream, "protocol version")
    if protocol != LEGACY_PROTOCOL_VERSION:
        raise WeightFileError(path, f"has legacy torch protocol {protocol!r}, expected {LEGACY_PROTOCOL_VERSION}",
                              fix="")
    sys_info = _load_pickle(path, stream, "sys-info header")
    byte_order = "<" if not isinstance(sys_info, Mapping) or sys_info.get("little_endian", True) else ">"
    saved = _load_pickle(path, stream, "saved object")
    storage_keys = _load_pickle(path, stream, "storage key list")
    if not isinstance(storage_keys, list):
        raise WeightFileError(path, "storage key list is not a list; the file is corrupt")

    refs = _tensor_refs(path, saved)
    storages = _read_storages(path, stream, storage_keys, refs, byte_order)
    return {name: _materialise(path, name, ref, storages) for name, ref in refs.items()}


def _tensor_refs(path: Path, saved: object) -> dict[str, _TensorRef]:
    if isinstance(saved, Mapping) and isinstance(saved.get("state_dict"), Mapping):
        saved = saved["state_dict"]
    if not isinstance(saved, Mapping):
        raise WeightFileError(path, f"holds a {type(saved).__name__}, not a state_dict of tensors", fix="")
    refs = {str(name): value for name, value in saved.items() if isinstance(value, _TensorRef)}
    if not refs:
        raise WeightFileError(path, "holds no tensors", fix="")
    return refs


def _read_storages(path: Path, stream: BinaryIO, keys: list, refs: dict[str, _TensorRef],
                   byte_order: str) -> dict[str, np.ndarray]:
    declared = {}
    for ref in refs.values():
        declared[ref.storage.key] = ref.storage
    storages: dict[str, np.ndarray] = {}
    for key in map(str, keys):
        if key not in declared:
            raise WeightFileError(path, f"storage {key!r} is listed but no tensor uses it; the file is corrupt")
        dtype = np.dtype(_STORAGE_DTYPES[declared[key].storage_type]).newbyteorder(byte_order)
        count_bytes = stream.read(8)
        if len(count_bytes) < 8:
            raise WeightFileError(path, f"ends before storage {key!r}; the file is truncated")
        (numel,) = struct.unpack(byte_order + "q", count_bytes)
        if numel != declared[key].numel:
            raise WeightFileError(path, f"storage {key!r} holds {numel} elements, the pickle says "
                                        f"{declared[key].numel}; the file is corrupt")
        data = stream.read(numel * dtype.itemsize)
        if len(data) < numel * dtype.itemsize:
            raise WeightFileError(path, f"storage {key!r} is cut short; the file is truncated")
        storages[key] = np.frombuffer(data, dtype=dtype)
    unread = sorted(set(declared) - set(storages))
    if unread:
        raise WeightFileError(path, f"storage {unread[0]!r} is used by a tensor but missing from the file")
    return storages


def _materialise(path: Path, name: str, ref: _TensorRef, storages: dict[str, np.ndarray]) -> np.ndarray:
    storage = storages[ref.storage.key]
    if ref.storage.view_numel is not None:
        storage = storage[ref.storage.view_offset: ref.storage.view_offset + ref.storage.view_numel]
    if len(ref.size) != len(ref.stride) or any(s < 0 for s in ref.stride):
        raise WeightFileError(path, f"tensor {name!r} has size {ref.size} and stride {ref.stride}")
    if math.prod(ref.size) == 0:
        values = np.zeros(ref.size, dtype=storage.dtype)
    else:
        last = ref.offset + sum((d - 1) * s for d, s in zip(ref.size, ref.stride))
        if ref.offset < 0 or last >= storage.size:
            raise WeightFileError(path, f"tensor {name!r} reaches element {last} of a {storage.size}-element "
                                        "storage; the file is corrupt")
        item = storage.itemsize
        values = np.lib.stride_tricks.as_strided(storage[ref.offset:], shape=ref.size,
                                                 strides=[s * item for s in ref.stride]).copy()
    values = values.astype(values.dtype.newbyteorder("="), copy=False)
    if ref.storage.storage_type == "BFloat16Storage":
        from ..formats import decode_table  # deferred: only bfloat16 checkpoints need the format tables

        values = decode_table("bfloat16", np.float32)[values]
    return values

