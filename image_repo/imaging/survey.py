"""A walk over a file's structure before any decoder runs: what decoding it will cost.

``survey`` reads markers (JPEG), blocks (GIF), image file directories (TIFF)
and chunks (PNG, WebP), never pixels, and raises ``LimitExceeded`` as soon as
the file passes a limit: it counts JPEG scans (as libjpeg-turbo's scan limit
does) and frames or pages, stopping at the first one over the limit, so a
file with a million frames costs no more than one with the limit plus one.

Each walk follows the reading rules of the decoder that will run after it
(libjpeg's marker reader, Pillow's GIF and TIFF readers), so it counts what
the decoder would meet. Where a file is too broken to walk, the walk stops
and leaves the refusal to the decoder. HEIF, AVIF and MPO say how many
images they hold in their header, which Pillow reads in one go: they are
counted after opening (``probe``, ``render``). BMP has one frame.

For JPEG the walk also records where each Huffman-coded scan's data ends:
``loading`` uses these positions to tell a complete scan from one whose data
stops early (a truncated file with an end marker appended).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from typing import BinaryIO

from image_repo.imaging import sniff
from image_repo.imaging.limits import Deadline, DecodeLimits, LimitExceeded, too_many_frames

# How much of the file one read brings in: walks move through a window.
_WINDOW = 1 << 20
# Walk steps between two looks at the deadline.
_TICK = 1024


@dataclass(frozen=True)
class Survey:
    kind: str | None  # "JPEG", "GIF", "PNG", "TIFF", "WEBP"; None: not walked here
    frames: int | None = None  # frames or pages found (None: not counted here)
    jpeg_scans: int = 0
    # JPEG: file offsets where the entropy-coded data of a Huffman-coded scan
    # ends, or is interrupted by a restart marker.
    scan_ends: tuple[int, ...] = ()
    # JPEG: why the walk alone shows the data incomplete or broken.
    damage: str | None = None


NOT_SURVEYED = Survey(kind=None)


def survey(stream: BinaryIO, limits: DecodeLimits, deadline: Deadline) -> Survey:
    """Walk ``stream`` (seekable, read from its start; left anywhere)."""
    data = _Window(stream)
    head = data.get(0, 16)
    # The signatures are sniff's, but for JPEG: the start marker alone, all
    # that libjpeg's marker reader (which the walk follows) asks for.
    if head.startswith(b"\xff\xd8"):
        return _jpeg(data, limits, deadline)
    if head.startswith(sniff.GIF_SIGNATURES):
        return Survey("GIF", frames=_gif(data, limits, deadline))
    if head.startswith(sniff.PNG_SIGNATURE):
        return Survey("PNG", frames=_png(data, limits, deadline))
    if head[:4] in sniff.TIFF_SIGNATURES:
        return Survey("TIFF", frames=_tiff(data, head, limits, deadline))
    if sniff.is_webp(head):
        return Survey("WEBP", frames=_webp(data, limits, deadline))
    return NOT_SURVEYED


def check_frames(frames: int, limits: DecodeLimits, what: str = "frames") -> None:
    """Refuse a count of frames (or pages) read from a header."""
    if frames > limits.max_frames:
        raise too_many_frames(limits.max_frames, what, frames)


def check_decoded_pixels(size: tuple[int, int], limits: DecodeLimits, frames: int = 1) -> None:
    """Refuse to decode ``frames`` frames of ``size`` when they pass max_decoded_pixels."""
    width, height = size
    pixels = width * height * frames
    if pixels > limits.max_decoded_pixels:
        what = f"{frames:,} frames of {width} x {height}" if frames > 1 else f"{width} x {height}"
        raise LimitExceeded(
            "too_many_decoded_pixels",
            f"Decoding {what} pixels ({pixels / 1e6:,.1f} megapixels) would pass the limit"
            f" of {limits.max_decoded_pixels / 1e6:,.1f} megapixels decoded at once.",
        )


def _too_many(limits: DecodeLimits, what: str = "frames") -> LimitExceeded:
    return too_many_frames(limits.max_frames, what)


class _Window:
    """Random access to a stream through a window, so that walks cost few reads."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.size = stream.seek(0, 2)
        self._start = 0
        self._buffer = b""

    def get(self, pos: int, n: int) -> bytes:
        offset = pos - self._start
        if offset >= 0 and offset + n <= len(self._buffer):
            return self._buffer[offset : offset + n]
        if pos >= self.size or pos < 0:
            return b""
        self._stream.seek(pos)
        if n > _WINDOW:
            return self._stream.read(n)
        self._buffer = self._stream.read(_WINDOW)
        self._start = pos
        return self._buffer[:n]

    def byte(self, pos: int) -> int | None:
        got = self.get(pos, 1)
        return got[0] if got else None

    def search(self, pattern: re.Pattern[bytes], pos: int, overlap: int = 1) -> int | None:
        """Offset of the first match of ``pattern`` (matches are at most overlap + 1 long)."""
        while pos < self.size:
            chunk = self.get(pos, min(_WINDOW, self.size - pos))
            found = pattern.search(chunk)
            if found:
                return pos + found.start()
            if len(chunk) <= overlap:
                return None
            pos += len(chunk) - overlap
        return None


# --- JPEG (libjpeg's marker reader: jdmarker.c) -----------------------------

# Any marker: FF then a code that is neither a stuffed zero nor a fill byte.
_ANY_MARKER = re.compile(rb"\xff[^\x00\xff]")
_EOI, _SOI, _SOS, _DRI = 0xD9, 0xD8, 0xDA, 0xDD
_RESTART = frozenset(range(0xD0, 0xD8))
_STANDALONE = frozenset({0x01, *_RESTART})  # TEM, RSTn: no length
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # not DHT, JPG, DAC
_SOF_HUFFMAN = frozenset({0xC0, 0xC1, 0xC2, 0xC3})
_SOF_PROGRESSIVE = frozenset({0xC2, 0xCA})


@dataclass
class _Frame:
    """What the frame header (SOF) and the restart interval (DRI) say, for counting MCUs."""

    width: int = 0
    height: int = 0
    sampling: dict[int, tuple[int, int]] = field(default_factory=dict)  # id: (h, v)
    restart_interval: int = 0
    progressive: bool = False
    # Per component: the lowest bit position sent of each coefficient (progressive),
    # or just whether any scan carried the component (sequential).
    sent: dict[int, list[int | None]] = field(default_factory=dict)
    scanned: set[int] = field(default_factory=set)

    def record_scan(self, header: bytes) -> None:
        count = header[0] if header else 0
        body = header[1 + 2 * count : 4 + 2 * count]
        components = [header[1 + 2 * i] for i in range(count) if 1 + 2 * i < len(header)]
        self.scanned.update(components)
        if not self.progressive or len(body) < 3:
            return
        start, end, low = body[0], body[1], body[2] & 15
        for component in components:
            bits = self.sent.setdefault(component, [None] * 64)
            for k in range(start, min(end, 63) + 1):
                bits[k] = low if bits[k] is None else min(bits[k], low)

    def missing_scans(self) -> str | None:
        """At the end marker: why the scans seen cannot make a whole picture (None: they can)."""
        if not self.sampling:
            return None
        if not self.progressive:
            if set(self.sampling) - self.scanned:
                return "no scan carries some of its components"
            return None
        for component in self.sampling:
            bits = self.sent.get(component)
            if bits is None or any(b is None or b > 0 for b in bits):
                return "its progressive scans stop before every coefficient is complete"
        return None

    @property
    def blocks(self) -> int:
        """An upper bound on the image's 8x8 blocks."""
        return len(self.sampling) * -(-self.width // 8) * -(-self.height // 8)

    def mcus(self, components: list[int]) -> int | None:
        """MCUs in a scan of these components (None: the headers do not tell)."""
        if not self.sampling or not all(c in self.sampling for c in components):
            return None
        h_max = max(h for h, _ in self.sampling.values())
        v_max = max(v for _, v in self.sampling.values())
        if len(components) == 1:  # one component: one block per MCU
            h, v = self.sampling[components[0]]
            width = -(-self.width * h // h_max)
            height = -(-self.height * v // v_max)
            return -(-width // 8) * -(-height // 8)
        return -(-self.width // (8 * h_max)) * -(-self.height // (8 * v_max))


def _jpeg(data: _Window, limits: DecodeLimits, deadline: Deadline) -> Survey:
    """Scans of the first image, up to its end marker (an MPO's others are not decoded)."""
    pos, scans, steps = 2, 0, 0
    huffman: bool | None = None
    frame = _Frame()
    ends: list[int] = []
    while True:
        steps += 1
        if steps % _TICK == 0:
            deadline.check()
        at = data.search(_ANY_MARKER, pos)
        if at is None:
            break
        marker = data.byte(at + 1)
        pos = at + 2
        if marker == _EOI:
            if scans and (gap := frame.missing_scans()):
                return Survey("JPEG", jpeg_scans=scans, damage=gap)
            break
        if marker == _SOI:  # a second start: libjpeg refuses the file
            break
        if marker in _STANDALONE:
            continue
        head = data.get(pos, 2)
        if len(head) < 2 or (length := int.from_bytes(head, "big")) < 2:
            break  # the decoder refuses it
        segment = data.get(pos + 2, min(length - 2, 1024))
        if marker in _SOF and huffman is None:
            huffman = marker in _SOF_HUFFMAN
            frame.progressive = marker in _SOF_PROGRESSIVE
            _read_frame_header(frame, segment)
        elif marker == _DRI and len(segment) >= 2:
            frame.restart_interval = int.from_bytes(segment[:2], "big")
        if marker != _SOS:
            pos += length
            continue
        scans += 1
        if scans > limits.max_jpeg_scans:
            raise LimitExceeded(
                "too_many_scans",
                f"The JPEG image has more than {limits.max_jpeg_scans:,} scans, the limit"
                " (progressive JPEGs from cameras and editors have about 10).",
            )
        first = len(ends)
        pos, complete = _entropy_coded_data(data, pos + length, ends, frame.blocks)
        if not complete:
            damage = "it has more restart markers than blocks"
            return Survey("JPEG", jpeg_scans=scans, damage=damage)
        if huffman and (missing := _missing_intervals(frame, segment, len(ends) - first)):
            damage = f"a scan lacks {missing} restart intervals"
            return Survey("JPEG", jpeg_scans=scans, damage=damage)
        frame.record_scan(segment)
        if pos is None:
            break
    return Survey("JPEG", jpeg_scans=scans, scan_ends=tuple(ends) if huffman else ())


def _read_frame_header(frame: _Frame, segment: bytes) -> None:
    if len(segment) < 6:
        return
    frame.height, frame.width, count = struct.unpack(">HHB", segment[1:6])
    for i in range(count):
        component = segment[6 + 3 * i : 9 + 3 * i]
        if len(component) == 3 and component[1] >> 4 and component[1] & 15:
            frame.sampling[component[0]] = (component[1] >> 4, component[1] & 15)


def _missing_intervals(frame: _Frame, scan_header: bytes, pieces: int) -> int:
    """Restart intervals a scan should have beyond the ``pieces`` of data found."""
    if not frame.restart_interval or not scan_header:
        return 0
    components = [
        scan_header[1 + 2 * i] for i in range(scan_header[0]) if 1 + 2 * i < len(scan_header)
    ]
    mcus = frame.mcus(components)
    if mcus is None:
        return 0
    return max(0, -(-mcus // frame.restart_interval) - pieces)


def _entropy_coded_data(
    data: _Window, pos: int, ends: list[int], blocks: int
) -> tuple[int | None, bool]:
    """Walk one scan's data from ``pos``: where the marker after it is (None: the file ends).

    Appends to ``ends`` where each piece of data ends: before every restart
    marker, and at the end of the scan. False when there are more restart
    markers than the image has blocks (no encoder writes that).
    """
    while True:
        at = data.search(_ANY_MARKER, pos)
        end = data.size if at is None else at
        while end > pos and data.byte(end - 1) == 0xFF:  # fill bytes before a marker
            end -= 1
        if at is None:  # no marker follows: the decoder will run out of data
            return None, True
        if len(ends) > blocks + _TICK:
            return None, False
        ends.append(end)
        if data.byte(at + 1) not in _RESTART:
            return at, True
        pos = at + 2


# --- GIF (Pillow's reader: GifImagePlugin._seek) ----------------------------

_GIF_BLOCK = re.compile(rb"[\x21\x2c\x3b]")


def _gif(data: _Window, limits: DecodeLimits, deadline: Deadline) -> int:
    screen = data.get(6, 7)
    if len(screen) < 7:
        return 0
    pos = 13 + (3 << ((screen[4] & 7) + 1) if screen[4] & 0x80 else 0)
    frames = 0
    while True:
        deadline.check()
        kind = data.byte(pos)
        if kind is None or kind == 0x3B:  # end of file, or the trailer
            return frames
        if kind == 0x21:  # extension: label, then sub-blocks
            pos = _skip_sub_blocks(data, pos + 2, deadline)
        elif kind == 0x2C:  # image descriptor: a frame
            descriptor = data.get(pos + 1, 9)
            if len(descriptor) < 9:
                return frames
            frames += 1
            if frames > limits.max_frames:
                raise _too_many(limits)
            flags = descriptor[8]
            pos += 10 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
            pos = _skip_sub_blocks(data, pos + 1, deadline)  # after the LZW code size
        else:  # Pillow skips anything else a byte at a time: jump to the next block
            found = data.search(_GIF_BLOCK, pos, overlap=0)
            if found is None:
                return frames
            pos = found


def _skip_sub_blocks(data: _Window, pos: int, deadline: Deadline) -> int:
    steps = 0
    while True:
        size = data.byte(pos)
        if not size:  # the terminator, or the end of the file
            return pos + 1
        pos += 1 + size
        steps += 1
        if steps % _TICK == 0:
            deadline.check()


# --- PNG / APNG --------------------------------------------------------------


def _png(data: _Window, limits: DecodeLimits, deadline: Deadline) -> int:
    """Frames an APNG declares (acTL, before the image data; Pillow counts them so)."""
    pos, steps = 8, 0
    while True:
        steps += 1
        if steps % _TICK == 0:
            deadline.check()
        header = data.get(pos, 8)
        if len(header) < 8:
            return 1
        length, kind = struct.unpack(">I4s", header)
        if kind in (b"IDAT", b"IEND"):
            return 1
        if kind == b"acTL":
            body = data.get(pos + 8, 4)
            if len(body) == 4:
                frames = int.from_bytes(body, "big")
                check_frames(frames, limits)
                return max(frames, 1)
        pos += 12 + length


# --- TIFF (the chain of image file directories) ------------------------------


def _tiff(data: _Window, head: bytes, limits: DecodeLimits, deadline: Deadline) -> int:
    order = "<" if head[:2] == b"II" else ">"
    if head[2:4] in (b"*\x00", b"\x00*"):  # classic TIFF
        count_format, entry_size, offset_format = "H", 12, "I"
        (offset,) = struct.unpack(order + "I", head[4:8])
    else:  # BigTIFF
        count_format, entry_size, offset_format = "Q", 20, "Q"
        (offset,) = struct.unpack(order + "Q", head[8:16])
    count_size, offset_size = struct.calcsize(count_format), struct.calcsize(offset_format)
    seen: set[int] = set()
    pages = 0
    while offset and offset not in seen:
        seen.add(offset)
        raw = data.get(offset, count_size)
        if len(raw) < count_size:
            break
        pages += 1
        if pages > limits.max_frames:
            raise _too_many(limits, "pages")
        if pages % _TICK == 0:
            deadline.check()
        (entries,) = struct.unpack(order + count_format, raw)
        raw = data.get(offset + count_size + entries * entry_size, offset_size)
        if len(raw) < offset_size:
            break
        (offset,) = struct.unpack(order + offset_format, raw)
    return pages


# --- WebP (RIFF chunks; an animation has one ANMF chunk per frame) -----------


def _webp(data: _Window, limits: DecodeLimits, deadline: Deadline) -> int:
    riff_size = int.from_bytes(data.get(4, 4), "little")
    end = min(data.size, 8 + riff_size)
    pos, frames = 12, 0
    while pos + 8 <= end:
        header = data.get(pos, 8)
        kind, size = header[:4], int.from_bytes(header[4:], "little")
        if kind == b"ANMF":
            frames += 1
            if frames > limits.max_frames:
                raise _too_many(limits)
            if frames % _TICK == 0:
                deadline.check()
        pos += 8 + size + (size & 1)
    return max(frames, 1)
