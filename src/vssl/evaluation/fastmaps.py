"""Exact statistics of upsampled maps without materialising them (the fast path of SPEC §4 scoring).

Maps ``x`` ``[N, h, w]`` are compared after ``metrics.upsample`` (bilinear, align_corners=True, float64) to
224x224. Output row ``i`` is, up to rounding, the linear interpolation of ``Ay[i] @ x`` between knots, so inside a
*row segment* (the columns between two knots) a threshold is crossed at most once. Every function here

1. classifies pixels per row segment in closed form, in float32 and in units normalised per map to [-1, 1],
   against ``t -+ _DELTA``: the margin 2^-16 far exceeds the float32 error of the classification (a few ulps of
   1, < 2^-19; measured < 2^-23), so pixels beyond it are decided and counted (or summed) without being computed;
2. computes the few pixels left in between bit for bit as torch's CPU kernel does (``_emulate``: interpolate
   along the width, then the height, each step ``fma(p, wp, q * wq)``; source index ``floorf(scale * j)``) or,
   when a map has many of them or this torch build computes otherwise (checked once), takes them from
   ``metrics.upsample`` of that map.

Results equal the pixel-level ones on the float64 ``F.interpolate`` output. Thresholds on another scale (``(v + 1)
/ 2``, a min-max map...) are given as ``post``: a per-map monotone nondecreasing function of the raw value, ``[N] ->
[N]``, inverted exactly. ``Maps(x)`` prepares maps once for several calls. The work runs on one torch thread.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from vssl.evaluation.gt import box_tensors
from vssl.maps import EVAL_SIZE, upsample

SIZE = EVAL_SIZE
PIXELS = SIZE * SIZE
F32, F64 = torch.float32, torch.float64
Post = Callable[[Tensor], Tensor]
Threshold = float | Tensor
_DELTA = 2.0**-16  # classification margin in normalised units
_FLAT = 2.0**-60  # segments flatter than this are treated as rising by this much (a change far below _DELTA)
_CHUNK = 256  # maps classified together
_DENSE = 2048  # a map with more pixels to compute exactly is upsampled instead
_BAND = 16  # pixels left between the bounds of a k-th value search before they are computed
_ROUNDS = 16  # bound on the rounds of a search
_MASK = 0x7FFFFFFFFFFFFFFF  # sign-magnitude <-> two's complement: doubles as ordered integers


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """One torch thread: the many small tensor operations here gain nothing from OpenMP, whose synchronisation
    costs up to 20x on a busy 2-core machine (the setting is restored afterwards)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _parallel(fn: Callable[[Any], Any], jobs: list) -> list:
    """``[fn(job) for job in jobs]`` on as many Python threads as torch has, each with one torch thread."""
    workers = min(torch.get_num_threads(), len(jobs))
    with _one_thread():
        if workers <= 1:
            return [fn(job) for job in jobs]
        with ThreadPoolExecutor(workers) as pool:
            return list(pool.map(fn, jobs))


@functools.cache
def _axis(n: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Source indices ``i0, i1`` and weights ``l0, l1`` (float64) of the ``SIZE`` outputs of an axis of length
    ``n``, as torch computes them: index ``floorf(scale * j)``, weight of ``i1`` clamped to [0, 1]."""
    j = torch.arange(SIZE)
    if n == SIZE:
        return j, j, torch.ones(SIZE, dtype=F64), torch.zeros(SIZE, dtype=F64)
    src = (n - 1) / (SIZE - 1) * j.double()
    i0 = src.float().floor().long().clamp(max=n - 1)
    l1 = (src - i0).clamp(0.0, 1.0)
    return i0, (i0 + 1).clamp(max=n - 1), 1.0 - l1, l1


@functools.cache
def _axis_matrix(n: int) -> Tensor:
    """``[SIZE, n]`` float64 interpolation matrix of one axis (two weights per row)."""
    i0, i1, l0, l1 = _axis(n)
    rows = torch.arange(SIZE)
    out = torch.zeros(SIZE, n, dtype=F64).index_put_((rows, i0), l0, accumulate=True)
    return out.index_put_((rows, i1), l1, accumulate=True)


@dataclass(frozen=True)
class _Segments:
    """Column segments of a width ``w`` by length: columns ``start[k] + p``, ``0 <= p < length[k]``; ``lines``
    ``[2K, w]``: value at p = 0 and change per column; ``groups``: runs ``(k0, k1, length)``; ``col_seg``: segment of
    each column (of column SIZE: the last);  ``ends``: first, last columns."""

    start: Tensor
    length: Tensor  # [K, 1] float32
    lines: Tensor
    groups: tuple[tuple[int, int, float], ...]
    col_seg: Tensor
    right_of: Tensor  # [K, K] float32: 1 where segment k' lies right of segment k
    ends: Tensor


@functools.cache
def _segments(w: int) -> _Segments:
    i0, i1, _, _ = _axis(w)
    left, length = torch.unique_consecutive(i0, return_counts=True)
    start = length.cumsum(0) - length
    order = length.sort(stable=True).indices
    pos = torch.empty_like(order).index_put_((order,), torch.arange(len(order)))
    runs, counts = torch.unique_consecutive(length[order], return_counts=True)
    stops = counts.cumsum(0).tolist()
    groups = tuple((e - c, e, float(r)) for e, c, r in zip(stops, counts.tolist(), runs.tolist(), strict=True))
    col_seg = torch.cat([pos.repeat_interleave(length), pos[-1:]])
    first, length, eye = start[order], length[order], torch.eye(w, dtype=F64)
    step = (eye[i1[first]] - eye[left[order]]) * ((w - 1) / (SIZE - 1) if w < SIZE else 0.0)
    ends = torch.cat([first, first + length - 1])
    right_of = (first[None, :] > first[:, None]).float()
    return _Segments(
        first, length[:, None].float(), torch.cat([_axis_matrix(w)[first], step]), groups, col_seg, right_of, ends
    )


def _fma(a: Tensor, b: Tensor, c: Tensor) -> Tensor:
    """Correctly rounded ``a * b + c`` in float64 (Boldo & Melquiond: exact product, sums, rounding to odd)."""
    p = a * b
    ga, gb = a * 134217729.0, b * 134217729.0  # Veltkamp splits: 2^27 + 1
    ah, bh = ga - (ga - a), gb - (gb - b)
    al, bl = a - ah, b - bh
    e = (((ah * bh - p) + ah * bl) + al * bh) + al * bl  # a * b = p + e exactly
    hi = c + p
    z = hi - c
    lo = (c - (hi - z)) + (p - z)  # c + p = hi + lo exactly
    v = lo + e
    z = v - lo
    err = (lo - (v - z)) + (e - z)  # lo + e = v + err exactly
    toward = torch.nextafter(v, torch.where(err > 0, math.inf, -math.inf))
    return hi + torch.where((err != 0) & ((v.view(torch.int64) & 1) == 0), toward, v)  # v rounded to odd


def _emulate(x: Tensor, n: Tensor, i: Tensor, j: Tensor) -> Tensor:
    """Values ``[U]`` of pixels ``(n[u], i[u], j[u])`` of ``upsample(x)`` (``x`` ``[N, h, w]`` float64)."""
    y0, y1, a0, a1 = (t[i] for t in _axis(x.shape[1]))
    c0, c1, b0, b1 = (t[j] for t in _axis(x.shape[2]))
    return _fma(_fma(x[n, y0, c0], b0, x[n, y0, c1] * b1), a0, _fma(x[n, y1, c0], b0, x[n, y1, c1] * b1) * a1)


@functools.cache
def emulation_matches_torch() -> bool:
    """Whether ``_emulate`` reproduces this torch build's kernel (checked on every pixel of a few maps)."""
    x = torch.randn(3, 5, 7, generator=torch.Generator().manual_seed(0), dtype=F64)
    x[1] = x[1].round()  # ties
    n, i, j = (t.flatten() for t in torch.meshgrid(*(torch.arange(s) for s in (3, SIZE, SIZE)), indexing="ij"))
    return torch.equal(_emulate(x, n, i, j), upsample(x)[n, i, j])


def _exact(x: Tensor, n: Tensor, i: Tensor, j: Tensor) -> Tensor:
    """Exact values ``[U]`` of pixels of ``upsample(x)``: emulated, or gathered from the upsampled map."""
    many = torch.bincount(n, minlength=len(x)) > (_DENSE if emulation_matches_torch() else 0)
    if not many.any():
        return _emulate(x, n, i, j)
    out, dense, maps = torch.empty(len(n), dtype=F64), many[n], many.nonzero()[:, 0]
    out[dense] = upsample(x[maps])[many.cumsum(0)[n[dense]] - 1, i[dense], j[dense]]
    out[~dense] = _emulate(x, n[~dense], i[~dense], j[~dense])
    return out


@dataclass
class _Rows:
    """A chunk of ``n`` maps prepared for classification; ``[n, K, S]``: ``K`` segments x ``S`` = SIZE rows."""

    x: Tensor  # [n, h, w] float64 maps
    centre: Tensor  # [n]: normalised value = (value - centre) / scale, in [-1, 1]
    scale: Tensor  # [n]
    w0: Tensor  # [n, K, S] float32: a row segment has clamp(ceil(w0 - t * w1), 0, length) pixels above t
    w1: Tensor
    rising: Tensor  # [n, K, S] float32 1: the pixels above t are the last ones of the segment, 0: the first
    full: Tensor  # [n, K, S] float32 length * rising
    seg: _Segments


def _knots(rows: _Rows) -> Tensor:
    """``[n, 2, K, h]`` float64: rows of the maps giving, after interpolation along the height, the normalised
    ``first`` and ``slope`` of each row segment (its pixel ``p`` is ``first + p * slope`` up to rounding)."""
    xn = ((rows.x - rows.centre[:, None, None]) / rows.scale[:, None, None]).transpose(1, 2)
    return (rows.seg.lines @ xn).view(len(xn), 2, -1, rows.x.shape[1])


def _prepare(x: Tensor) -> _Rows:
    lo, hi = x.amin((1, 2)), x.amax((1, 2))
    rows = _Rows(x, (lo + hi) / 2, torch.where(hi > lo, (hi - lo) / 2, 1.0), x, x, x, x, _segments(x.shape[2]))
    first, slope = _knots(rows).float().transpose(0, 1).contiguous() @ _axis_matrix(x.shape[1]).T.float()
    rows.w1 = slope.abs().clamp_min_(_FLAT).reciprocal_()  # columns per unit of value
    rows.rising = (slope >= 0).float()
    # pixels above t: those after the crossing c = (t - first) * w1 in a rising segment, ceil(L - 1 - c) of them;
    # before c = (first - t) * w1 in a falling one, ceil(c) of them
    rows.full = rows.seg.length * rows.rising
    rows.w0 = torch.addcmul(rows.full - rows.rising, first, rows.w1)
    return rows


class Maps:
    """Maps ``x`` ``[N, h, w]`` prepared once for the functions below, which accept it wherever they take maps."""

    def __init__(self, x: Tensor) -> None:
        self.x = x.double()
        self.chunks = _parallel(_prepare, [self.x[s : s + _CHUNK] for s in range(0, len(x), _CHUNK)])

    def __len__(self) -> int:
        return len(self.x)


MapsLike = Tensor | Maps


def _count(rows: _Rows, t: Tensor, maps: Tensor | None = None) -> Tensor:
    """Pixels above normalised ``t`` ``[n]`` per row segment, ``[n, K, S]`` float32 (of ``maps`` only if given)."""
    w0, w1, t = (rows.w0, rows.w1, t) if maps is None else (z.index_select(0, maps) for z in (rows.w0, rows.w1, t))
    c = torch.addcmul(w0, t.to(F32)[:, None, None], w1, value=-1).ceil_()
    for k0, k1, length in rows.seg.groups:
        c[:, k0:k1].clamp_(0.0, length)
    return c


def _interval(rows: _Rows, c: Tensor) -> tuple[Tensor, Tensor]:
    """Local columns ``[a, b)`` of the ``c`` pixels above, per row segment."""
    a = torch.addcmul(rows.full, c, rows.rising, value=-1)
    return a, a + c


def _margins(rows: _Rows, t: Tensor) -> tuple[Tensor, Tensor]:
    """Counts above ``t + _DELTA`` (pixels certainly above raw ``t`` ``[n]``) and ``t - _DELTA`` (possibly above)."""
    tn = ((t - rows.centre) / rows.scale).clamp(-2.0, 2.0)
    return _count(rows, tn + _DELTA), _count(rows, tn - _DELTA)


def _undecided(*sides: tuple[_Rows, Tensor, Tensor]) -> tuple[Tensor, ...]:
    """Pixels possibly but not certainly above per side ``(rows, certain, possible)``, merged per row segment:
    ``n, i, j`` (pixel), ``rs`` (flat row-segment index), ``p`` (local column), each ``[U]`` long."""
    gap = functools.reduce(torch.add, (possible.sum(1) - certain.sum(1) for _, certain, possible in sides))
    n, i = gap.nonzero().unbind(1)  # rows with undecided pixels, then their segments
    rows, segs = sides[0][0], sides[0][1].shape[1]
    k = torch.arange(segs).repeat(len(n))
    rs = ((n * segs).repeat_interleave(segs) + k) * SIZE + i.repeat_interleave(segs)
    length = rows.seg.length[:, 0].repeat(len(n))
    lo = torch.full(rs.shape, math.inf)
    hi = -lo
    for side, certain, possible in sides:
        c, q, rising = (z.view(-1).index_select(0, rs) for z in (certain, possible, side.rising))
        a, b = torch.where(rising > 0, length - q, c), torch.where(rising > 0, length - c, q)
        lo, hi = torch.where(b > a, torch.minimum(lo, a), lo), torch.where(b > a, torch.maximum(hi, b), hi)
    count = (hi - lo).clamp_min(0).long()
    first = torch.where(count > 0, lo, 0).long() - (count.cumsum(0) - count)
    rs, k = rs.repeat_interleave(count), k.repeat_interleave(count)
    p = first.repeat_interleave(count) + torch.arange(len(rs))
    return rs // (segs * SIZE), rs % SIZE, rows.seg.start[k] + p, rs, p


def _passes(rows: _Rows, pix: tuple[Tensor, ...], t: Tensor) -> Tensor:
    """Whether the exact values of pixels ``pix`` (from ``_undecided``) reach ``t[n]``."""
    return _exact(rows.x, *pix[:3]) >= t[pix[0]]


def _chunked(fn: Callable[..., Tensor], maps: Sequence[MapsLike], *per_map) -> Tensor:
    """``fn(*chunks of prepared maps, *chunks of per_map)`` over the chunks of ``_CHUNK`` maps, concatenated."""
    prepared = [m if isinstance(m, Maps) else Maps(m) for m in maps]
    jobs = list(enumerate(zip(*(m.chunks for m in prepared), strict=True)))

    def run(job: tuple[int, tuple[_Rows, ...]]) -> Tensor:
        s, chunks = job
        return fn(*chunks, *(a[s * _CHUNK : (s + 1) * _CHUNK] for a in per_map))

    parts = _parallel(run, jobs)
    return torch.cat(parts) if parts else torch.zeros(0)


def _flip(b: Tensor) -> Tensor:
    """Bits of a double (int64) <-> an integer in the order of the doubles (an involution)."""
    return torch.where(b < 0, b ^ _MASK, b)


def raw_threshold(t: Threshold, n: int, strict: bool = True, post: Post | None = None) -> Tensor:
    """Per-map raw threshold ``[n]`` float64 such that ``post(v) > t`` (``>=`` unless strict) iff ``v >= it``
    (``-inf``: every value passes, ``+inf``: none), by bisection over the doubles."""
    t = torch.as_tensor(t, dtype=F64).expand(n).clone()
    if post is None:
        return torch.nextafter(t, torch.full_like(t, math.inf)) if strict else t

    def ok(v: Tensor) -> Tensor:
        p = post(v)
        return p > t if strict else p >= t

    top = torch.full((n,), torch.finfo(F64).max, dtype=F64)
    lo, hi = _flip((-top).view(torch.int64)), _flip(top.view(torch.int64))
    for _ in range(64):  # invariant where relevant: ok(lo) false, ok(hi) true
        mid = (lo >> 1) + (hi >> 1) + (lo & hi & 1)
        good = ok(_flip(mid).view(F64))
        lo, hi = torch.where(good, lo, mid), torch.where(good, mid, hi)
    out = torch.where(ok(top), _flip(hi).view(F64), math.inf)
    return torch.where(ok(-top), -math.inf, out)


class Boxes:
    """Box ground truth of ``N`` samples: ``boxes`` ``[N, B, 4]`` long pixel boxes ``(x0, y0, x1, y1)`` filling
    ``[y0:y1, x0:x1]`` of the 224 frame (padding: empty boxes); ``flickr`` ``[N]`` bool: G = sum of the box masks
    / 2 capped at 1 (flickr style), else their union (vggss style), as ``gt.box_map``. Derived: per-row profiles
    of G and [G == 0], constant between the sorted column ``edges`` ``[N, E]``, as their jumps ``steps``
    ``[N, 2, E, SIZE]`` float32 at the edges; ``sums`` ``[N, 3]`` float64: sum of G, pixels with G == 0, with G > 0."""

    _FIELDS = ("boxes", "flickr", "edges", "steps", "sums")

    def __init__(self, boxes: Tensor, flickr: Tensor) -> None:
        self.boxes, self.flickr = boxes, flickr
        x0, y0, x1, y1 = boxes.clamp(0, SIZE).unbind(-1)
        self.edges = torch.cat([torch.zeros_like(x0[:, :1]), x0, x1], 1).sort(1).values
        rows = torch.arange(SIZE)
        in_rows = ((y0[..., None] <= rows) & (rows < y1[..., None])).float()
        in_cols = ((x0[..., None] <= self.edges[:, None]) & (self.edges[:, None] < x1[..., None])).float()
        values = self._style(in_cols.transpose(1, 2) @ in_rows, flickr[:, None, None])  # [N, 2, E, SIZE]
        self.steps = values.clone()
        self.steps[:, :, 1:] -= values[:, :, :-1]
        widths = torch.diff(self.edges, append=torch.full_like(self.edges[:, :1], SIZE)).float()
        sums = torch.einsum("nkes,ne->nk", values, widths).double()  # halves below 2^23: exact in float32
        self.sums = torch.cat([sums, PIXELS - sums[:, 1:]], 1)

    @classmethod
    def from_lists(cls, boxes: Sequence[Sequence[Sequence[int]]], styles: Sequence[str]) -> Boxes:
        """From per-sample lists of ``(x0, y0, x1, y1)`` pixel boxes and ``"vggss"`` / ``"flickr"`` styles."""
        return cls(*box_tensors(boxes, styles))

    def __getitem__(self, index: slice | Tensor) -> Boxes:
        out = Boxes.__new__(Boxes)
        for name in self._FIELDS:
            setattr(out, name, getattr(self, name)[index])
        return out

    @staticmethod
    def _style(cover: Tensor, flickr: Tensor) -> Tensor:
        """G and [G == 0] stacked on dim 1 from box counts ``cover`` (``flickr`` broadcast against it)."""
        out = cover.new_empty(cover.shape[0], 2, *cover.shape[1:])
        torch.where(flickr, (cover / 2).clamp(max=1.0), (cover > 0).float(), out=out[:, 0])
        torch.eq(cover, 0, out=out[:, 1])
        return out

    def at(self, n: Tensor, i: Tensor, j: Tensor) -> Tensor:
        """``[U, 2]`` float32: G and [G == 0] at pixels ``(n, i, j)``."""
        b = self.boxes[n]
        inside = (b[..., 0] <= j[:, None]) & (j[:, None] < b[..., 2]) & (b[..., 1] <= i[:, None])
        return self._style((inside & (i[:, None] < b[..., 3])).sum(1).float(), self.flickr[n])


def _weighted_chunk(rows: _Rows, t: Tensor, gt: Boxes) -> Tensor:
    certain, possible = _margins(rows, t)
    a, b = _interval(rows, certain)
    seg, k = rows.seg, rows.seg.col_seg[gt.edges]  # the segment of each edge, picked by products with one-hots
    pick = torch.nn.functional.one_hot(k, len(seg.start)).float()  # [n, E, K]
    inside = pick @ b - torch.maximum(pick @ a, (gt.edges - seg.start[k]).float()[..., None])
    right = (pick @ seg.right_of) @ (b - a) + inside.clamp_min_(0)  # [n, E, S]: pixels above at columns >= edge
    out = (gt.steps * right[:, None]).sum((2, 3)).double()
    pix = _undecided((rows, certain, possible))
    return out.index_add_(0, pix[0], gt.at(*pix[:3]).double() * _passes(rows, pix, t)[:, None])


def _pair_chunk(r1: _Rows, r2: _Rows, t: Tensor) -> Tensor:
    m1, m2 = _margins(r1, t), _margins(r2, t)
    (a1, b1), (a2, b2) = _interval(r1, m1[0]), _interval(r2, m2[0])
    lo, hi = torch.maximum(a1, a2), torch.minimum(b1, b2)
    certain = torch.stack([b1 - a1, b2 - a2, (hi - lo).clamp_min(0)], 1).sum((2, 3)).double()  # [n, 3]
    pix = _undecided((r1, *m1), (r2, *m2))
    rs, p = pix[3:]

    def inside(a: Tensor, b: Tensor) -> Tensor:  # was the pixel counted as certainly above
        return (a.flatten()[rs] <= p) & (p < b.flatten()[rs])

    pass1, pass2 = _passes(r1, pix, t), _passes(r2, pix, t)
    found = torch.stack([pass1, pass2, pass1 & pass2], 1).double()
    counted = torch.stack([inside(a1, b1), inside(a2, b2), inside(lo, hi)], 1).double()
    return certain.index_add_(0, pix[0], found - counted).round().long()


def _count_chunk(rows: _Rows, t: Tensor) -> Tensor:
    certain, possible = _margins(rows, t)
    pix = _undecided((rows, certain, possible))
    count = certain.sum((1, 2)).double()
    return count.index_add_(0, pix[0], _passes(rows, pix, t).double()).round().long()


def _sum_chunk(rows: _Rows, t: Tensor) -> Tensor:
    """``[n, 2]`` float64: count and sum of the pixels strictly above ``t``."""
    certain, possible = _margins(rows, t)
    a, b = _interval(rows, certain)
    count = b - a
    # sum over columns p in [a, b) of first + p * slope: count * first + count * (a + b - 1) / 2 * slope
    weights = torch.stack([count, count * (a + b - 1) / 2], 1).double() @ _axis_matrix(rows.x.shape[1])
    out = torch.stack([count.sum((1, 2)).double(), (weights * _knots(rows)).sum((1, 2, 3))], 1)
    out[:, 1] = rows.centre * out[:, 0] + rows.scale * out[:, 1]
    pix = _undecided((rows, certain, possible))
    v, n = _exact(rows.x, *pix[:3]), pix[0]
    keep = (v > t[n]).double()  # summed as v - t: many undecided pixels are those of a flat map
    kept = torch.zeros_like(out).index_add_(0, n, torch.stack([keep, (v - t[n]) * keep], 1))
    return out + torch.stack([kept[:, 0], kept[:, 1] + t * kept[:, 0]], 1)


def count_above(x: MapsLike, t: Threshold, strict: bool = True, post: Post | None = None) -> Tensor:
    """``[N]`` long: pixels of ``upsample(x)`` (``x`` ``[N, h, w]``) with ``post(value) > t`` (``>=`` unless strict);
    ``t`` a float or ``[N]``."""
    return _chunked(_count_chunk, [x], raw_threshold(t, len(x), strict, post))


def weighted_count_above(x: MapsLike, t: Threshold, gt: Boxes, strict: bool = True, post: Post | None = None) -> Tensor:
    """``[N, 2]`` float64 over the pixels above ``t`` (as ``count_above``): the sum of the ground truth G, and the
    number of pixels where G == 0 -- the two sums of the cIoU."""
    t = raw_threshold(t, len(x), strict, post)
    return _chunked(_weighted_chunk, [x], t, gt)


def ciou_above(x: MapsLike, t: Threshold, gt: Boxes, strict: bool = True, post: Post | None = None) -> Tensor:
    """``[N]`` cIoU of the prediction ``post(value) > t`` (``>=`` unless strict) with ``gt``, as ``metrics.ciou``."""
    inter, outside = weighted_count_above(x, t, gt, strict, post).unbind(1)
    denom = gt.sums[:, 0] + outside
    return torch.where(denom > 0, inter / denom.clamp(min=1e-300), torch.zeros_like(inter))


def pair_counts_above(
    x1: MapsLike, x2: MapsLike, t: Threshold, strict: bool = True, post: Post | None = None
) -> Tensor:
    """``[N, 3]`` long: pixels above ``t`` (as ``count_above``) in ``upsample(x1)``, in ``upsample(x2)`` and in both
    (one classification of each map)."""
    t = raw_threshold(t, len(x1), strict, post)
    return _chunked(_pair_chunk, [x1, x2], t)


def _narrow(rows: _Rows, quota: Tensor, bounds: list[Tensor]) -> tuple[Tensor, Tensor]:
    """Narrow ``bounds = [lo, hi, above(lo), above(hi)]`` (normalised values, pixels above them) around the value
    with ``quota`` pixels above until at most ``_BAND`` pixels lie between. A round probes +- max(_BAND / 4,
    bracket / 16) pixels around the secant point of the last two probes (after two probes on one side: the secant
    point and the middle of the bracket)."""
    lo, hi, above_lo, above_hi = bounds
    last, counts, straddled = [lo, hi], [above_lo, above_hi], torch.ones(len(quota), dtype=torch.bool)
    for _ in range(_ROUNDS):
        width = above_lo - above_hi
        open_ = (width > _BAND) & (hi - lo > 8 * _DELTA)
        active = open_.nonzero()[:, 0]
        if not len(active):
            break
        slope = (counts[0] - counts[1]) / (last[1] - last[0])
        flat = ~(slope > 0)
        slope = torch.where(flat, width / (hi - lo), slope)
        base, count = torch.where(flat, lo, last[0]), torch.where(flat, above_lo, counts[0])
        guess, mid = (base + (count - quota - 0.5) / slope).clamp(lo, hi), (lo + hi) / 2
        half = (width / 16).clamp(min=_BAND / 4) / slope
        probes = [
            torch.where(straddled, (guess - half).clamp(lo, hi), torch.minimum(guess, mid)),
            torch.where(straddled, (guess + half).clamp(lo, hi), torch.maximum(guess, mid)),
        ]
        last = [torch.where(open_, p, lo) for p in probes]  # a closed bracket stays as it is
        few = active if len(active) < len(quota) // 2 else None  # copy the coefficients of the few open maps only
        counts = [_count(rows, p, few).sum((1, 2)).double() for p in last]
        if few is not None:
            counts = [above_lo.index_put((few,), c) for c in counts]
        straddled = (counts[0] > quota) & (counts[1] <= quota)
        for p, above in zip(last, counts, strict=True):
            raise_lo, lower_hi = (above > quota) & (p > lo), (above <= quota) & (p < hi)
            lo, above_lo = torch.where(raise_lo, p, lo), torch.where(raise_lo, above, above_lo)
            hi, above_hi = torch.where(lower_hi, p, hi), torch.where(lower_hi, above, above_hi)
    return lo, hi


def _kth_chunk(rows: _Rows, k: Tensor) -> Tensor:
    quota = (PIXELS - 1 - k).double()  # pixels allowed above the k-th value
    lo, hi = torch.full((len(k),), -1 - 2 * _DELTA, dtype=F64), torch.full((len(k),), 1 + 2 * _DELTA, dtype=F64)
    bounds, low, high = [lo, hi, torch.full_like(lo, PIXELS), torch.zeros_like(lo)], k == 0, k == PIXELS - 1
    if (low | high).any():  # minimum / maximum: next to those of the cells' corner pixels (bilinear cells), no search
        h, w = rows.x.shape[1:]
        x = (rows.x - rows.centre[:, None, None]) / rows.scale[:, None, None]
        corners = (_axis_matrix(h)[_segments(h).ends] @ x @ _axis_matrix(w)[_segments(w).ends].T).flatten(1)
        lo, hi = torch.where(high, corners.amax(1) - 2 * _DELTA, lo), torch.where(low, corners.amin(1) + 2 * _DELTA, hi)
        bounds = [lo, hi, torch.where(low | high, quota + 1, bounds[2]), torch.where(low | high, quota, bounds[3])]
    lo, hi = _narrow(rows, quota, bounds)
    # past the range of the maps (the bounds of a maximum / minimum) no pixel is above / below: no count
    certain = _count(rows, hi + _DELTA) if (hi < 1).any() else torch.zeros_like(rows.w0)
    possible = _count(rows, lo - _DELTA) if (lo > -1).any() else rows.seg.length.expand_as(rows.w0).contiguous()
    pix = _undecided((rows, certain, possible))
    v, n = _exact(rows.x, *pix[:3]), pix[0]
    order = v.argsort()
    order = order[n[order].argsort(stable=True)]  # by map, then by value
    count = torch.bincount(n, minlength=len(k))
    rank = k - (PIXELS - certain.sum((1, 2)).round().long() - count)  # among the computed pixels of the map
    at = torch.where((rank >= 0) & (rank < count), count.cumsum(0) - count + rank, len(v))
    value = torch.cat([v[order], torch.full((1,), math.nan, dtype=F64)])[at]
    normed = (value - rows.centre) / rows.scale
    bad = ~((normed >= lo - _DELTA / 2) & (normed <= hi + _DELTA / 2))  # NaN fails too
    if bad.any():  # the bounds missed the k-th value: take it from the upsampled maps
        value[bad] = upsample(rows.x[bad]).flatten(1).sort(1).values.gather(1, k[bad][:, None])[:, 0]
    return value


def kth_smallest(x: MapsLike, k: int | Tensor) -> Tensor:
    """``[N]`` float64: the value at sorted index ``k`` (int or ``[N]``, 0-based) of each ``upsample(x)``."""
    k = torch.as_tensor(k, dtype=torch.long).expand(len(x)).clone()
    if ((k < 0) | (k >= PIXELS)).any():
        raise ValueError(f"k must lie in [0, {PIXELS - 1}]")
    return _chunked(_kth_chunk, [x], k)


def value_range(x: MapsLike) -> tuple[Tensor, Tensor]:
    """``([N], [N])`` float64: minimum and maximum of each ``upsample(x)``."""
    return kth_smallest(x, 0), kth_smallest(x, PIXELS - 1)


def sum_top_k(x: MapsLike, k: int | Tensor) -> Tensor:
    """``[N]`` float64: sum of the ``k`` (int or ``[N]``, 0 <= k <= P) largest values of each ``upsample(x)``."""
    k = torch.as_tensor(k, dtype=torch.long).expand(len(x)).clone()
    tau = kth_smallest(x, PIXELS - k.clamp(1, PIXELS))  # the k-th largest value
    count, total = _chunked(_sum_chunk, [x], tau).unbind(1)
    return torch.where(k > 0, total + (k - count) * tau, 0.0)
