"""Which input elements a tile of a lowered (im2col) conv operand touches: its footprint, halo included.

DRAM holds a conv's input as a tensor, not as the im2col matrix.  A tile of the im2col operand covers a block
of output positions (rows of the lowered matrix, flat ``(n, p, q)``) and a block of the reduction (flat
``(r, s, c)``, channel fastest, as ``Conv2d.gemm()`` lowers it); the scratchpad holds the input elements
those touch, and an on-chip address generator feeds the array the im2col rows from them.  Padding is not
read (the generator makes the zeros).

Counting is exact and closed per block: a block of positions is at most three pieces of output rows (a
partial first row, whole rows, a partial last row) per image, a block of the reduction splits its channels
into at most four classes that each see one contiguous range of taps, itself at most three pieces of filter
rows.  Each (row piece, tap piece) touches a product set ``rows_h x cols_w``; the union of those few products
is counted row by row of the input.  Blocks away from the top and bottom edges have footprints that do not
change when shifted by whole output rows, so they are normalised before the (cached) count: a layer's blocks
collapse to a few hundred distinct counts however small the tile.
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache

import numpy as np


@dataclasses.dataclass(frozen=True)
class ConvGeometry:
    """One group of a conv as its im2col operand sees it (the GEMM's batch is the group).

    ``operand``: which GEMM operand is the im2col matrix: ``"a"`` (forward: rows are positions, the reduction
    is taps x channels) or ``"b"`` (weight gradient: the reduction is positions, the columns are taps x
    channels).  ``position_offset`` / ``tap_channel_offset``: where this problem's first position and first
    tap-channel sit in the layer (non-zero for one core's share of a split layer)."""

    N: int
    H: int
    W: int
    C: int  # channels per group
    R: int
    S: int
    stride: tuple[int, int]
    padding: tuple[int, int]  # (top, left): bottom and right only clip, and the bounds check does that
    dilation: tuple[int, int]
    P: int
    Q: int
    operand: str = "a"
    position_offset: int = 0
    tap_channel_offset: int = 0

    @property
    def positions(self) -> int:
        return self.N * self.P * self.Q

    @property
    def tap_channels(self) -> int:
        return self.R * self.S * self.C

    @property
    def position_dim(self) -> str:
        """The GEMM dimension that runs over output positions."""
        return "M" if self.operand == "a" else "K"

    @property
    def tap_channel_dim(self) -> str:
        return "K" if self.operand == "a" else "N"

    def shifted(self, dim: str, lo: int) -> ConvGeometry:
        """The geometry of the sub-problem that starts at ``lo`` along GEMM dimension ``dim`` (a core's share)."""
        if dim == self.position_dim:
            return dataclasses.replace(self, position_offset=self.position_offset + lo)
        if dim == self.tap_channel_dim:
            return dataclasses.replace(self, tap_channel_offset=self.tap_channel_offset + lo)
        return self


def _row_pieces(lo: int, hi: int, width: int) -> list[tuple[int, int, int, int]]:
    """A flat range [lo, hi) of a row-major (row, col) grid of ``width`` columns as at most three boxes
    (row_lo, row_hi, col_lo, col_hi): a partial first row, whole rows, a partial last row."""
    first, last = lo // width, (hi - 1) // width
    if first == last:
        return [(first, first + 1, lo - first * width, hi - first * width)]
    pieces = []
    if lo % width:
        pieces.append((first, first + 1, lo % width, width))
        first += 1
    end = last + 1 if hi % width == 0 else last
    if end > first:
        pieces.append((first, end, 0, width))
    if hi % width:
        pieces.append((last, last + 1, 0, hi % width))
    return pieces


@lru_cache(maxsize=1 << 16)
def _axis_mask(out_lo: int, out_hi: int, stride: int, tap_lo: int, tap_hi: int, dilation: int, pad: int,
               size: int) -> int:
    """Input coordinates along one axis that outputs [out_lo, out_hi) read through taps [tap_lo, tap_hi), as
    a bit mask (bit x set: coordinate x is read)."""
    mask = 0
    for o in range(out_lo, out_hi):
        for t in range(tap_lo, tap_hi):
            if 0 <= (x := o * stride - pad + t * dilation) < size:
                mask |= 1 << x
    return mask


@lru_cache(maxsize=1 << 16)
def _spatial_exact(g: ConvGeometry, pos_lo: int, pos_hi: int, tap_lo: int, tap_hi: int) -> int:
    """(h, w) input positions of one image touched by image-local positions [pos_lo, pos_hi) over flat taps
    [tap_lo, tap_hi): the union of the (row piece x tap piece) products ``rows x cols``.  The input rows are
    split into regions read by the same products (refined one product at a time); a region counts its rows
    times the columns the union of its products' columns covers."""
    (sh, sw), (dh, dw), (pt, pl) = g.stride, g.dilation, g.padding
    regions: list[tuple[int, int]] = []  # (rows mask, columns mask)
    for p_lo, p_hi, q_lo, q_hi in _row_pieces(pos_lo, pos_hi, g.Q):
        for r_lo, r_hi, s_lo, s_hi in _row_pieces(tap_lo, tap_hi, g.S):
            rows = _axis_mask(p_lo, p_hi, sh, r_lo, r_hi, dh, pt, g.H)
            cols = _axis_mask(q_lo, q_hi, sw, s_lo, s_hi, dw, pl, g.W)
            if not (rows and cols):
                continue
            refined = []
            for region_rows, region_cols in regions:
                if region_rows & rows:
                    refined.append((region_rows & rows, region_cols | cols))
                if region_rows & ~rows:
                    refined.append((region_rows & ~rows, region_cols))
                rows &= ~region_rows
            if rows:
                refined.append((rows, cols))
            regions = refined
    return sum(rows.bit_count() * cols.bit_count() for rows, cols in regions)


def _spatial(g: ConvGeometry, pos_lo: int, pos_hi: int, tap_lo: int, tap_hi: int) -> int:
    """``_spatial_exact`` with the block shifted up by whole output rows while no input row it touches is
    clipped by the top or bottom edge (the count is the same there), so equal blocks share one count."""
    if pos_hi <= pos_lo or tap_hi <= tap_lo:
        return 0
    (sh, _), (dh, _), (pt, _) = g.stride, g.dilation, g.padding
    p_first, p_last = pos_lo // g.Q, (pos_hi - 1) // g.Q
    r_first, r_last = tap_lo // g.S, (tap_hi - 1) // g.S
    if p_first * sh - pt + r_first * dh >= 0 and p_last * sh - pt + r_last * dh < g.H:
        lowest = max(0, -(-(pt - r_first * dh) // sh))  # the first output row whose rows are all inside
        shift = (p_first - lowest) * g.Q
        pos_lo, pos_hi = pos_lo - shift, pos_hi - shift
    return _spatial_exact(g, pos_lo, pos_hi, tap_lo, tap_hi)


def _channel_classes(g: ConvGeometry, lo: int, hi: int) -> list[tuple[int, int, int]]:
    """A flat tap-channel range [lo, hi) as (channels, tap_lo, tap_hi) classes: the channels of each class
    are read through the same contiguous range of taps (one range's ``_tap_weights``)."""
    t0, c0 = divmod(lo, g.C)
    t1, c1 = divmod(hi - 1, g.C)
    if t0 == t1:
        return [(c1 - c0 + 1, t0, t0 + 1)]
    # channel c sees tap t0 iff c >= c0 and tap t1 iff c <= c1; the taps between see every channel
    classes = []
    for sees_first, sees_last, count in ((True, True, max(0, c1 - c0 + 1)),
                                         (True, False, g.C - max(c0, c1 + 1)),
                                         (False, True, min(c0, c1 + 1)),
                                         (False, False, max(0, c0 - c1 - 1))):
        tap_lo, tap_hi = (t0 if sees_first else t0 + 1), (t1 + 1 if sees_last else t1)
        if count > 0 and tap_hi > tap_lo:
            classes.append((count, tap_lo, tap_hi))
    return classes


def block_footprint(g: ConvGeometry, positions: tuple[int, int], tap_channels: tuple[int, int]) -> int:
    """:func:`footprint_grid`'s count for one block, positions [lo, hi) by tap-channels [lo, hi) of this
    problem, in plain Python (a grid's array set-up costs more than one block's few cached counts)."""
    lo, hi = positions[0] + g.position_offset, positions[1] + g.position_offset
    per_image = g.P * g.Q
    n_first, n_last = lo // per_image, (hi - 1) // per_image
    total = 0
    for count, tap_lo, tap_hi in _channel_classes(g, tap_channels[0] + g.tap_channel_offset,
                                                  tap_channels[1] + g.tap_channel_offset):
        if n_first == n_last:
            spatial = _spatial(g, lo - n_first * per_image, hi - n_first * per_image, tap_lo, tap_hi)
        else:  # the head of the first image, whole images, the tail of the last
            spatial = (_spatial(g, lo - n_first * per_image, per_image, tap_lo, tap_hi)
                       + (n_last - n_first - 1) * _spatial(g, 0, per_image, tap_lo, tap_hi)
                       + _spatial(g, 0, hi - n_last * per_image, tap_lo, tap_hi))
        total += count * spatial
    return total


def _tap_weights(g: ConvGeometry, lo: np.ndarray, hi: np.ndarray) -> tuple[list[tuple[int, int]], np.ndarray]:
    """``_channel_classes`` of every flat tap-channel range [lo[j], hi[j]) at once: the distinct tap ranges,
    and the channels each range is read for in each block ([tap range, block]).  The four classes are those
    of ``_channel_classes``; a range within one tap is its first class (the others are empty there)."""
    t0, c0 = np.divmod(lo, g.C)
    t1, c1 = np.divmod(hi - 1, g.C)
    if (t0 == t1).all():  # every range within one tap (the common case of small blocks): one class each
        taps, inverse = np.unique(t0, return_inverse=True)
        weights = np.zeros((len(taps), len(lo)), dtype=np.int64)
        weights[inverse.reshape(-1), np.arange(len(lo))] = hi - lo
        return [(int(t), int(t) + 1) for t in taps], weights
    counts = np.stack([np.maximum(0, c1 - c0 + 1), g.C - np.maximum(c0, c1 + 1),
                       np.minimum(c0, c1 + 1), np.maximum(0, c0 - c1 - 1)])
    tap_lo = np.stack([t0, t0, t0 + 1, t0 + 1])
    tap_hi = np.stack([t1 + 1, t1, t1 + 1, t1])
    keep = (counts > 0) & (tap_hi > tap_lo)
    span = g.R * g.S + 1
    keys, inverse = np.unique((tap_lo * span + tap_hi)[keep], return_inverse=True)
    block = np.broadcast_to(np.arange(len(lo)), counts.shape)[keep]
    weights = np.zeros((len(keys), len(lo)), dtype=np.int64)
    np.add.at(weights, (inverse.reshape(-1), block), counts[keep])
    return [divmod(int(key), span) for key in keys], weights


def _image_pieces(g: ConvGeometry, lo: np.ndarray, hi: np.ndarray):
    """Flat position ranges split by image: (head_lo, head_hi, whole_images, tail_hi) arrays, image-local;
    the tail is [0, tail_hi) of the last image (0 when the range ends in its first image)."""
    per_image = g.P * g.Q
    n_first, n_last = lo // per_image, (hi - 1) // per_image
    same = n_first == n_last
    head_lo = lo - n_first * per_image
    head_hi = np.where(same, hi - n_first * per_image, per_image)
    whole = np.where(same, 0, n_last - n_first - 1)
    tail_hi = np.where(same, 0, hi - n_last * per_image)
    return head_lo, head_hi, whole, tail_hi


def _spatial_many(g: ConvGeometry, lo: np.ndarray, hi: np.ndarray, tap_lo: int, tap_hi: int) -> np.ndarray:
    """``_spatial`` of every image-local range [lo[i], hi[i]): ranges are shifted as ``_spatial`` does, here
    for all at once, so that only distinct shifted ranges are counted."""
    if len(lo) <= 8:  # numpy's fixed cost is more than a few cached look-ups
        return np.array([_spatial(g, int(a), int(b), tap_lo, tap_hi) for a, b in zip(lo, hi)], dtype=np.int64)
    (sh, _), (dh, _), (pt, _) = g.stride, g.dilation, g.padding
    r_first, r_last = tap_lo // g.S, (tap_hi - 1) // g.S
    p_first, p_last = lo // g.Q, (hi - 1) // g.Q
    inside = (p_first * sh - pt + r_first * dh >= 0) & (p_last * sh - pt + r_last * dh < g.H)
    lowest = max(0, -(-(pt - r_first * dh) // sh))
    shift = np.where(inside, (p_first - lowest) * g.Q, 0)
    span = g.P * g.Q + 1
    keys, inverse = np.unique((lo - shift) * span + (hi - shift), return_inverse=True)
    counts = np.array([_spatial_exact(g, int(k) // span, int(k) % span, tap_lo, tap_hi) for k in keys],
                      dtype=np.int64)
    return counts[inverse.reshape(-1)]


@lru_cache(maxsize=1 << 12)
def _inside_prefix(g: ConvGeometry, tap: int) -> np.ndarray:
    """Entry i: how many of an image's first i positions (flat ``p*Q + q``) read an input element (not
    padding) through flat tap ``tap``."""
    r, s = divmod(tap, g.S)
    (sh, sw), (dh, dw), (pt, pl) = g.stride, g.dilation, g.padding
    rows = np.arange(g.P) * sh - pt + r * dh
    cols = np.arange(g.Q) * sw - pl + s * dw
    inside = ((rows >= 0) & (rows < g.H))[:, None] & ((cols >= 0) & (cols < g.W))[None, :]
    return np.concatenate([[0], np.cumsum(inside.reshape(-1), dtype=np.int64)])


def _inside_before(g: ConvGeometry, tap: int, ends: np.ndarray) -> np.ndarray:
    """For each flat position ``e`` of ``ends`` (over all images): how many positions before it read an input
    element through ``tap``.  Through one tap, distinct positions of an image read distinct input elements, so
    the footprint of positions [lo, hi) is ``_inside_before(hi) - _inside_before(lo)``."""
    prefix = _inside_prefix(g, tap)
    images, within = np.divmod(ends, g.P * g.Q)
    return images * prefix[-1] + prefix[within]


Axis = tuple[int, int, bool]
"""How a GEMM dimension is cut: (total, block size, prefix).  ``prefix`` False: the blocks [lo, lo + size);
True: [0, end of each block), what a block that stays resident has loaded by then."""


def axis_ranges(axis: Axis) -> np.ndarray:
    total, size, prefix = axis
    ends = np.minimum(np.arange(size, total + size, size), total)
    starts = np.zeros_like(ends) if prefix else np.arange(0, total, size)
    return np.stack([starts, ends], axis=1)


@lru_cache(maxsize=4096)
def footprint_grid(g: ConvGeometry, positions: Axis, tap_channels: Axis) -> np.ndarray:
    """Input elements (of one group) touched by each (position range, tap-channel range) pair of the two cut
    dimensions: entry [i, j] for the i-th position range and the j-th tap-channel range (read-only)."""
    bounds = axis_ranges(positions) + g.position_offset
    # out = spatial counts per distinct tap range (columns of ``spatial``) x channels per (tap range, block):
    # small reduction blocks repeat the same few tap ranges, so each is counted once
    columns = axis_ranges(tap_channels) + g.tap_channel_offset
    tap_ranges, weights = _tap_weights(g, columns[:, 0], columns[:, 1])
    spatial = np.zeros((len(bounds), len(tap_ranges)), dtype=np.int64)
    pieces = None  # the position ranges split by image, for ranges of several taps
    for u, (tap_lo, tap_hi) in enumerate(tap_ranges):
        if tap_hi - tap_lo == 1:  # one tap reads one input element per position: count the positions inside
            spatial[:, u] = _inside_before(g, tap_lo, bounds[:, 1]) - _inside_before(g, tap_lo, bounds[:, 0])
            continue
        if pieces is None:
            head_lo, head_hi, whole, tail_hi = pieces = _image_pieces(g, bounds[:, 0], bounds[:, 1])
            zeros, tails = np.zeros_like(tail_hi), tail_hi > 0
        image = _spatial(g, 0, g.P * g.Q, tap_lo, tap_hi)
        spatial[:, u] = _spatial_many(g, head_lo, head_hi, tap_lo, tap_hi) + whole * image
        if tails.any():
            spatial[tails, u] += _spatial_many(g, zeros[tails], tail_hi[tails], tap_lo, tap_hi)
    out = spatial @ weights
    out.flags.writeable = False
    return out


def blocks(full: int, size: int) -> tuple[tuple[int, int], ...]:
    """[lo, hi) blocks of ``size`` covering [0, full)."""
    return tuple((lo, min(lo + size, full)) for lo in range(0, full, size))


def conv_geometry(layer) -> ConvGeometry | None:
    """The im2col geometry of a conv layer's pass, or None when no operand is an im2col of its input: the
    forward pass (operand A) and the weight gradient (operand B) read the input through it; the data gradient
    writes an im2col-shaped result that col2im scatters, which is not modelled here (it stays a matrix)."""
    layer = getattr(layer, "conv_layer", None) or layer  # a trace's GEMM carries the conv it recorded
    if layer is None or not getattr(layer, "is_conv", False) or layer.pass_ == "backward_data":
        return None
    return ConvGeometry(layer.N, layer.H, layer.W, layer.C // layer.groups, layer.R, layer.S, tuple(layer.stride),
                        (layer.padding[0], layer.padding[2]), tuple(layer.dilation), layer.P, layer.Q,
                        "a" if layer.pass_ == "forward" else "b")
