"""Decode an opened image's current frame within a deadline; JPEG scans checked whole.

Most formats load through Pillow's own ``load()``, which reads the file in
chunks through the ``DeadlineReader`` the image was opened on. A JPEG is fed
to Pillow's JPEG decoder here instead, chunk by chunk, for two reasons:

- **Time.** The deadline is checked before every chunk and at the end of
  every scan, so even a progressive JPEG whose scans are a few bytes each
  comes back to Python at least once per scan.
- **Truncation.** libjpeg does not fail on missing data when a marker
  follows it: it warns (a warning Pillow discards), decodes the rest of the
  scan (or of the restart interval) from zero bits and goes on, so a photo
  cut short with an end marker appended decodes "successfully". So each
  piece of Huffman-coded data (``survey`` found where each scan ends and
  where restart markers interrupt it) is handed over alone, followed by
  stuffed 0xFF bytes instead of the marker, then by one more such byte on
  its own:

  - After complete data, the decoder finishes the scan (or interval) with
    the help of the first filler (it reads up to 8 bytes ahead), then looks
    for the next marker: it discards both fillers as junk before a marker,
    consuming every byte it is given.
  - After incomplete data, the decoder takes the filler as data (all-ones
    bits are no valid Huffman code: each block eats at least 32 bits of
    them), and then the lone byte cannot complete a block: the decoder
    suspends and leaves it unconsumed (it keeps a block's bytes until the
    block is whole). Only when a handful of blocks were missing can the
    filler complete the scan, and then the picture lacks nearly nothing.

  So a piece whose bytes are not all consumed was incomplete, whatever
  bytes followed the missing data: the file is refused as truncated.
"""

from __future__ import annotations

from PIL import Image, ImageFile

from image_repo.imaging.limits import Deadline
from image_repo.imaging.survey import Survey

# What Pillow asks for per read as well.
CHUNK = 64 * 1024
# Stuffed 0xFF data bytes: 128 bits of ones. Enough to cover the decoder's
# read-ahead at the end of complete data (at most 8 bytes), too few to
# complete more than a handful of blocks of incomplete data.
FILLER = b"\xff\x00" * 16
# Then one more, alone: junk to a decoder looking for a marker, too little
# to finish a block for one that is still decoding.
PROBE = b"\xff\x00"

INCOMPLETE = "image file is truncated: a scan's data stops before its last block"


def load(
    im: ImageFile.ImageFile, survey: Survey, deadline: Deadline, *, whole: bool = True
) -> None:
    """Decode ``im`` (opened on a DeadlineReader) or raise; ``whole``: refuse incomplete JPEG scans.

    Raises DecodeTimeout past the deadline, OSError for damaged data.
    """
    if _is_plain_jpeg_tile(im):
        if not whole:
            _load_jpeg(im, (), deadline)
        elif survey.damage:
            raise OSError(f"image file is truncated or broken: {survey.damage}")
        else:
            _load_jpeg(im, survey.scan_ends, deadline)
    else:
        im.load()
    deadline.check()


def _is_plain_jpeg_tile(im: Image.Image) -> bool:
    tile = getattr(im, "tile", None)
    return im.format in ("JPEG", "MPO") and bool(tile) and len(tile) == 1 and tile[0][0] == "jpeg"


def _load_jpeg(im: ImageFile.ImageFile, scan_ends: tuple[int, ...], deadline: Deadline) -> None:
    """What ImageFile.load does for a single JPEG tile, with checkpoints at ``scan_ends``."""
    _, extents, offset, args = im.tile[0]
    # The ends are those of the file's first image (an MPO's other images start later).
    stops = [end for end in scan_ends if end > offset] if offset == 0 else []
    fp = im.fp
    assert fp is not None
    im.load_prepare()
    decoder = Image._getdecoder(im.mode, "jpeg", args, im.decoderconfig)
    status = 0
    try:
        decoder.setimage(im.im, extents)
        fp.seek(offset)
        pos, pending, next_stop = offset, b"", 0
        while True:
            deadline.check()
            if next_stop < len(stops) and pos >= stops[next_stop]:
                # A piece of data is all in: what the decoder does with the filler tells.
                for fed in (pending + FILLER, PROBE):
                    consumed, status = decoder.decode(fed)
                    if consumed < 0:
                        break
                    if consumed < len(fed):
                        raise OSError(INCOMPLETE)
                if consumed < 0:
                    break
                pending, next_stop = b"", next_stop + 1
                continue
            want = CHUNK if next_stop >= len(stops) else min(CHUNK, stops[next_stop] - pos)
            data = fp.read(want)
            if not data:
                raise OSError(f"image file is truncated ({len(pending)} bytes not processed)")
            pos += len(data)
            pending += data
            consumed, status = decoder.decode(pending)
            if consumed < 0:
                break
            pending = pending[consumed:]
    finally:
        decoder.cleanup()
    if status < 0:
        raise OSError(f"broken data stream when reading image file (decoder error {status})")
    im.tile = []
    im.readonly = 0
    im.load_end()
