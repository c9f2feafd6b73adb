"""probe(): validation by decoding, metadata, placeholder and perceptual hash."""

from __future__ import annotations

import io
import itertools
import re
import struct
import warnings
from datetime import datetime, timedelta, timezone

import blurhash as reference_blurhash  # blurhash-python, the reference C encoder
import numpy as np
import pytest
from PIL import Image, ImageFile

from image_repo.imaging import exif, hashes
from image_repo.imaging.formats import ACCEPTED_FORMATS
from image_repo.imaging.probe import ImageInfo, ImageRejected, probe
from tests.support.corpus import corpus_files, corpus_path, manifest

BLURHASH_CHARS = re.compile(f"[{re.escape(hashes.BLURHASH_ALPHABET)}]+")


def probe_bytes(data: bytes, **kwargs) -> ImageInfo:
    return probe(io.BytesIO(data), **kwargs)


def saved(im: Image.Image, fmt: str, **params) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **params)
    return buf.getvalue()


def corpus_bytes(name: str) -> bytes:
    return corpus_path(name).read_bytes()


def assert_valid_blurhash(value: str | None) -> None:
    assert value and BLURHASH_CHARS.fullmatch(value)
    size_flag = hashes.BLURHASH_ALPHABET.index(value[0])
    nx, ny = size_flag % 9 + 1, size_flag // 9 + 1
    assert len(value) == 4 + 2 * nx * ny


# --- the corpus manifest ---------------------------------------------------


@pytest.mark.parametrize("name", corpus_files("accept"))
def test_accepted_corpus_file_matches_manifest(name):
    entry = manifest()[name]
    info = probe(corpus_path(name))
    got = {
        "format": info.format,
        "width": info.width,
        "height": info.height,
        "stored_width": info.stored_width,
        "stored_height": info.stored_height,
        "orientation": info.orientation,
        "frames": info.frames,
        "gps": info.has_gps,
    }
    assert got == {key: entry[key] for key in got}
    assert info.mime_type == ACCEPTED_FORMATS[info.format].mime_type
    # A parsed position implies GPS tags; the converse fails for garbage tags.
    assert info.gps_latitude is None or info.has_gps
    assert (info.gps_latitude is None) == (info.gps_longitude is None)
    assert_valid_blurhash(info.blurhash)
    assert info.phash and re.fullmatch(r"[0-9a-f]{16}", info.phash)


@pytest.mark.parametrize("name", corpus_files("reject"))
def test_rejected_corpus_file_gives_manifest_reason(name):
    with pytest.raises(ImageRejected) as caught:
        probe(corpus_path(name))
    assert caught.value.reason == manifest()[name]["reason"]
    message = caught.value.message
    assert message.startswith("The ") and message.endswith(".")
    assert str(corpus_path(name).parent) not in message  # no server paths to clients
    assert str(caught.value) == message


def test_probe_reads_file_objects_and_restores_their_position():
    stream = io.BytesIO(corpus_bytes("valid/hopper.jpg"))
    stream.seek(7)
    info = probe(stream)
    assert (info.format, info.width) == ("JPEG", 128)
    assert stream.tell() == 7
    assert not stream.closed


def test_probe_reads_unseekable_streams():
    class Pipe(io.RawIOBase):
        def __init__(self, data: bytes) -> None:
            self._data = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:
            return self._data.readinto(buffer)

    assert probe(Pipe(corpus_bytes("valid/hopper.png"))).format == "PNG"


def test_a_missing_path_is_the_callers_error_not_a_rejection(tmp_path):
    with pytest.raises(FileNotFoundError):
        probe(tmp_path / "nope.jpg")


# --- what an accepted image is -----------------------------------------------


@pytest.mark.parametrize(
    ("name", "mode", "animated", "has_alpha", "has_icc"),
    [
        ("valid/hopper.jpg", "RGB", False, False, False),
        ("valid/pil_sample_cmyk.jpg", "CMYK", False, False, False),
        ("valid/hopper.Lab.tif", "LAB", False, False, False),
        ("valid/transparency.avif", "RGBA", False, True, False),
        ("valid/icc_profile_big.jpg", "RGB", False, False, True),
        ("valid/iss634.gif", "P", True, False, False),
        ("valid/num_plays.png", "RGBA", True, True, False),
        ("valid/sugarshack.mpo", "RGB", False, False, False),  # a stereo pair, not a movie
    ],
)
def test_image_properties(name, mode, animated, has_alpha, has_icc):
    info = probe(corpus_path(name))
    assert (info.mode, info.animated, info.has_alpha, info.has_icc) == (
        mode,
        animated,
        has_alpha,
        has_icc,
    )


def test_orientation_zero_is_reported_and_displays_unrotated():
    info = probe(corpus_path("orientation/Landscape_0.jpg"))
    assert info.orientation == 0
    assert (info.width, info.height) == (info.stored_width, info.stored_height)


# --- EXIF -------------------------------------------------------------------


def test_exif_fields_of_exif_gps_jpg():
    info = probe(corpus_path("valid/exif_gps.jpg"))
    assert info.camera_make == "Make"
    assert info.camera_model == "XXX-XXX"
    assert info.taken_at == datetime(2099, 9, 29, 10, 10, 10)  # no offset tag: naive
    assert info.has_gps
    # Its GPSLatitude is 4294967295 degrees, with no longitude: no position.
    assert (info.gps_latitude, info.gps_longitude, info.gps_altitude) == (None, None, None)
    # ExposureTime and ISOSpeed are 4294967295 as well: garbage, not settings.
    assert info.exposure_time is None
    assert info.iso is None


def test_exif_fields_of_a_camera_photo():
    info = probe(corpus_path("valid/broken_exif_dpi.jpg"))
    assert (info.camera_make, info.camera_model) == ("NIKON CORPORATION", "NIKON D800")
    assert info.lens == "14.0-24.0 mm f/2.8"  # LensModel sits in IFD0 in this file
    assert info.taken_at == datetime(2013, 9, 11, 16, 45, 13, 900000)  # SubSec "90"
    assert (info.exposure_time, info.f_number, info.iso, info.focal_length) == (
        0.004,
        8.0,
        400,
        14.0,
    )


@pytest.mark.parametrize(
    "name",
    [
        "valid/hopper_bad_exif.jpg",
        "valid/invalid-exif.jpg",
        "valid/broken_exif_dpi.jpg",
        "valid/empty_gps_ifd.jpg",
        "valid/exif_gps.jpg",
    ],
)
def test_broken_exif_never_fails_probe(name):
    info = probe(corpus_path(name))
    assert info.width > 0
    assert info.taken_at is None or isinstance(info.taken_at, datetime)


def test_empty_gps_ifd_is_no_gps():
    info = probe(corpus_path("valid/empty_gps_ifd.jpg"))
    assert not info.has_gps
    assert info.gps_latitude is None
    assert info.camera_model == "Redmi Note 9S"


# A hand-built EXIF block, so tests can write what Pillow refuses to write
# (zero denominators, negative rationals, wrong types).
ASCII, SHORT, LONG, RATIONAL, UNDEFINED, SRATIONAL, BYTE = 2, 3, 4, 5, 7, 10, 1


def ascii_(text: bytes) -> tuple[int, int, bytes]:
    return ASCII, len(text) + 1, text + b"\0"


def short(*values: int) -> tuple[int, int, bytes]:
    return SHORT, len(values), struct.pack(f"<{len(values)}H", *values)


def long_(*values: int) -> tuple[int, int, bytes]:
    return LONG, len(values), struct.pack(f"<{len(values)}I", *values)


def rational(*pairs: tuple[int, int], signed: bool = False) -> tuple[int, int, bytes]:
    packed = b"".join(struct.pack("<ii" if signed else "<II", *pair) for pair in pairs)
    return (SRATIONAL if signed else RATIONAL), len(pairs), packed


def byte(*values: int) -> tuple[int, int, bytes]:
    return BYTE, len(values), bytes(values)


def _ifd(entries: list, start: int) -> bytes:
    entries = sorted(entries)
    data_at = start + 2 + 12 * len(entries) + 4
    table, data = [struct.pack("<H", len(entries))], b""
    for tag, (kind, count, payload) in entries:
        if len(payload) <= 4:
            table.append(struct.pack("<HHI", tag, kind, count) + payload.ljust(4, b"\0"))
        else:
            table.append(struct.pack("<HHII", tag, kind, count, data_at + len(data)))
            data += payload + b"\0" * (len(payload) % 2)
    return b"".join(table) + b"\0\0\0\0" + data


def exif_block(ifd0=(), exif_ifd=(), gps_ifd=()) -> bytes:
    subs = [(0x8769, list(exif_ifd)), (0x8825, list(gps_ifd))]
    subs = [(tag, entries) for tag, entries in subs if entries]
    # Lay out IFD0 once with dummy pointers to learn where the sub-IFDs go.
    offset = 8 + len(_ifd([*ifd0, *((tag, long_(0)) for tag, _ in subs)], 8))
    pointers, blobs = [], []
    for tag, entries in subs:
        pointers.append((tag, long_(offset)))
        blobs.append(_ifd(entries, offset))
        offset += len(blobs[-1])
    tiff = b"II*\0" + struct.pack("<I", 8) + _ifd([*ifd0, *pointers], 8) + b"".join(blobs)
    return b"Exif\0\0" + tiff


def jpeg_with_exif(block: bytes, size: tuple[int, int] = (40, 30)) -> bytes:
    return saved(Image.new("RGB", size, (200, 60, 30)), "JPEG", exif=block)


def test_exif_fields_are_parsed_and_converted():
    block = exif_block(
        ifd0=[
            (271, ascii_(b"  Canon\0\0")),
            (272, ascii_(b"EOS R5")),
            (274, short(6)),
        ],
        exif_ifd=[
            (33434, rational((1, 250))),  # ExposureTime
            (33437, rational((28, 10))),  # FNumber
            (34855, short(400)),  # ISO
            (37386, rational((35, 1))),  # FocalLength
            (42036, ascii_(b"RF35mm F1.8\x01")),  # LensModel, a stray control char
            (36867, ascii_(b"2021:06:01 12:30:45")),
            (36881, ascii_(b"+02:00")),
        ],
        gps_ifd=[
            (1, ascii_(b"N")),
            (2, rational((52, 1), (31, 1), (1250, 100))),
            (3, ascii_(b"W")),
            (4, rational((13, 1), (24, 1), (36, 1))),
            (5, byte(1)),
            (6, rational((355, 10))),
        ],
    )
    info = probe_bytes(jpeg_with_exif(block))
    assert (info.camera_make, info.camera_model, info.lens) == ("Canon", "EOS R5", "RF35mm F1.8")
    assert info.orientation == 6
    assert (info.stored_width, info.stored_height, info.width, info.height) == (40, 30, 30, 40)
    assert info.exposure_time == pytest.approx(1 / 250)
    assert info.f_number == pytest.approx(2.8)
    assert info.iso == 400
    assert info.focal_length == pytest.approx(35.0)
    assert info.taken_at == datetime(2021, 6, 1, 12, 30, 45, tzinfo=timezone(timedelta(hours=2)))
    assert info.gps_latitude == pytest.approx(52 + 31 / 60 + 12.5 / 3600)
    assert info.gps_longitude == pytest.approx(-(13 + 24 / 60 + 36 / 3600))
    assert info.gps_altitude == pytest.approx(-35.5)  # ref 1: below sea level
    assert info.has_gps


def test_hostile_exif_values_become_none():
    block = exif_block(
        ifd0=[
            (271, ascii_(b"\0\0\0")),  # empty once NULs go
            (272, ascii_(b"x" * 5000)),  # absurdly long
            (274, short(65535)),  # orientation out of range
        ],
        exif_ifd=[
            (33434, rational((1, 0))),  # zero denominator: NaN
            (33437, ascii_(b"f/2.8")),  # text where a rational belongs
            (34855, short(0)),
            (37386, rational((-35, 1), signed=True)),
            (36867, ascii_(b"0000:00:00 00:00:00")),
            (36868, ascii_(b"2021:13:45 99:99:99")),
            (306, ascii_(b"yesterday")),
        ],
        gps_ifd=[
            (1, ascii_(b"Q")),  # neither N nor S
            (2, rational((52, 1), (31, 1), (12, 1))),
            (3, ascii_(b"E")),
            (4, rational((13, 0), (24, 1), (36, 1))),
            (6, rational((4294967295, 1))),
        ],
    )
    info = probe_bytes(jpeg_with_exif(block))
    assert info.orientation == 1
    assert (info.width, info.height) == (40, 30)
    fields = (
        "camera_make",
        "camera_model",
        "taken_at",
        "exposure_time",
        "f_number",
        "iso",
        "focal_length",
        "gps_latitude",
        "gps_longitude",
        "gps_altitude",
    )
    assert {field: getattr(info, field) for field in fields} == dict.fromkeys(fields)
    assert info.has_gps


@pytest.mark.parametrize(
    "garbage",
    [
        b"Exif\0\0",  # nothing after the header
        b"Exif\0\0MM\0*\xff\xff\xff\xff",  # IFD0 offset past the end
        b"Exif\0\0II*\0\x08\0\0\0\xff\xff" + b"\x01" * 40,  # 65535 entries claimed
        b"Exif\0\0" + b"\xa5" * 300,
    ],
)
def test_undecodable_exif_blocks_do_not_fail_probe(garbage):
    info = probe_bytes(jpeg_with_exif(garbage))
    assert (info.format, info.width, info.orientation, info.camera_make) == ("JPEG", 40, 1, None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2020:07:27 14:46:48", datetime(2020, 7, 27, 14, 46, 48)),
        ("2020-07-27T14:46:48", datetime(2020, 7, 27, 14, 46, 48)),
        ("2020:07:27 14:46:48\0\0", datetime(2020, 7, 27, 14, 46, 48)),
        ("0000:00:00 00:00:00", None),
        ("    :  :     :  :  ", None),
        ("2020:02:30 10:00:00", None),
        ("2020:07:27", None),
        ("", None),
        (b"2020:07:27 14:46:48", datetime(2020, 7, 27, 14, 46, 48)),
        (20200727, None),
    ],
)
def test_parse_exif_datetime(text, expected):
    assert exif.parse_exif_datetime(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+02:00", timedelta(hours=2)),
        ("-05:30", timedelta(hours=-5, minutes=-30)),
        ("+0100", timedelta(hours=1)),
        ("+00:00", timedelta(0)),
        ("+25:00", None),
        ("   :  ", None),
        ("Z", None),
        (None, None),
    ],
)
def test_parse_offset(text, expected):
    offset = exif.parse_offset(text)
    assert (offset.utcoffset(None) if offset else None) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ((52.0, 30.0, 36.0), 52.51),
        ((52.0, 30.6), 52.51),
        (52.51, 52.51),
        ((float("nan"), 0.0, 0.0), None),
        ((-1.0, 0.0, 0.0), None),
        (("52", 0, 0), None),
        ((), None),
        ((1.0, 2.0, 3.0, 4.0), None),
    ],
)
def test_dms_to_degrees(value, expected):
    result = exif.dms_to_degrees(value)
    assert result == (pytest.approx(expected) if expected is not None else None)


@pytest.mark.parametrize(
    ("value", "expected"), [(6, 6), (0, 0), (9, 1), (-1, 1), ("6", 1), (None, 1), ((3,), 3)]
)
def test_orientation_of(value, expected):
    assert exif.orientation_of({} if value is None else {274: value}) == expected


# --- pixel limits -------------------------------------------------------------


def test_pixel_limit_is_configurable():
    data = corpus_bytes("valid/hopper.png")  # 128 x 128 = 16384 pixels
    assert probe_bytes(data, max_pixels=128 * 128).width == 128
    with pytest.raises(ImageRejected) as caught:
        probe_bytes(data, max_pixels=128 * 128 - 1)
    assert caught.value.reason == "too_many_pixels"
    assert "128 x 128" in caught.value.message


def test_pixel_limit_applies_to_every_frame_with_its_own_size():
    pages = [Image.new("RGB", (10, 10)), Image.new("RGB", (100, 100))]
    data = saved(pages[0], "TIFF", save_all=True, append_images=pages[1:])
    info = probe_bytes(data)
    assert (info.frames, info.animated, info.width) == (2, False, 10)
    with pytest.raises(ImageRejected) as caught:
        probe_bytes(data, max_pixels=5000)
    assert caught.value.reason == "too_many_pixels"
    assert caught.value.message.startswith("Frame 2 ")


def test_pillow_limit_neither_lets_a_bomb_through_nor_refuses_a_legit_image(monkeypatch):
    # Pillow warns above MAX_IMAGE_PIXELS and raises above twice that.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    data = corpus_bytes("valid/hopper.png")  # 16384 pixels: 16x Pillow's limit
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert probe_bytes(data, max_pixels=20_000).width == 128
        with pytest.raises(ImageRejected) as caught:
            probe_bytes(data, max_pixels=10_000)
    assert caught.value.reason == "too_many_pixels"
    # Pillow's own limit was raised only as far as the call needed.
    assert Image.MAX_IMAGE_PIXELS == 10_000


def test_pillow_bomb_error_is_a_rejection_whatever_the_limit():
    with pytest.raises(ImageRejected) as caught:
        probe(corpus_path("invalid/decompression_bomb.gif"), max_pixels=10**9)
    assert caught.value.reason == "too_many_pixels"


# --- corruption and truncation -------------------------------------------------


@pytest.mark.parametrize("name", ["valid/hopper.jpg", "valid/hopper.png", "valid/flower.jpg"])
@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_truncated_images_are_corrupt(name, keep):
    data = corpus_bytes(name)
    with pytest.raises(ImageRejected) as caught:
        probe_bytes(data[: int(len(data) * keep)])
    assert caught.value.reason == "corrupt"
    assert "incomplete" in caught.value.message


@pytest.mark.parametrize(
    "name", ["valid/hopper.webp", "valid/hopper.heif", "valid/hopper.avif", "valid/hopper.tif"]
)
def test_truncated_images_of_other_formats_are_refused(name):
    data = corpus_bytes(name)
    with pytest.raises(ImageRejected) as caught:
        probe_bytes(data[: len(data) // 2])
    # A half AVIF is not even identified by its decoder.
    assert caught.value.reason in ("corrupt", "not_an_image")


def test_load_truncated_images_stays_off():
    with pytest.raises(ImageRejected):
        probe(corpus_path("invalid/truncated_jpeg.jpg"))
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_probe_refuses_to_run_if_pillow_accepts_truncated_files(monkeypatch):
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(RuntimeError):
        probe(corpus_path("valid/hopper.jpg"))


def test_gif_with_damaged_later_frames_is_accepted_on_its_first_frame():
    # Only the first frame is decoded: a GIF cut inside its animation keeps
    # the frames whose headers can be read.
    data = corpus_bytes("valid/iss634.gif")
    info = probe_bytes(data[: int(len(data) * 0.7)])
    assert info.format == "GIF"
    assert 1 < info.frames < manifest()["valid/iss634.gif"]["frames"]


def test_gif_cut_inside_its_first_frame_is_corrupt():
    data = corpus_bytes("valid/iss634.gif")
    with pytest.raises(ImageRejected) as caught:
        probe_bytes(data[: len(data) // 20])
    assert caught.value.reason == "corrupt"


def test_mpo_whose_second_image_was_removed_is_accepted_as_one_frame():
    data = corpus_bytes("valid/sugarshack.mpo")
    with Image.open(io.BytesIO(data)) as im:
        im.seek(1)
        second_image_at = im.tile[0][2]  # where the second JPEG begins
    info = probe_bytes(data[:second_image_at])
    assert (info.format, info.frames, info.width) == ("MPO", 1, 640)


# --- what is not an accepted image ------------------------------------------------


def hopper() -> Image.Image:
    with Image.open(corpus_path("valid/hopper.png")) as im:
        return im.convert("RGB")


@pytest.mark.parametrize(
    ("fmt", "named"),
    [
        ("PDF", "PDF"),
        ("EPS", "EPS"),
        ("ICO", "ICO"),
        ("PPM", "Netpbm"),
        ("QOI", "QOI"),
        ("TGA", "TGA"),
        ("PCX", "PCX"),
    ],
)
def test_real_images_in_other_formats_are_unsupported_and_named(fmt, named):
    with pytest.raises(ImageRejected) as caught:
        probe_bytes(saved(hopper(), fmt))
    assert caught.value.reason == "unsupported_format"
    assert named in caught.value.message
    assert "JPEG, PNG" in caught.value.message  # says what is accepted


def test_a_photoshop_header_is_unsupported():
    with pytest.raises(ImageRejected) as caught:
        probe_bytes(b"8BPS\x00\x01" + b"\x00" * 200)
    assert caught.value.reason == "unsupported_format"
    assert "Photoshop" in caught.value.message


@pytest.mark.parametrize(
    ("data", "named"),
    [
        (b"", "empty"),
        (b"\x00\x01\x02\x03" * 64, "not an image"),
        (b"PK\x03\x04" + b"\x00" * 100, "ZIP"),
        (b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 100, "video"),
        ("Grüße, this is text\n".encode(), "text"),
        (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>', "SVG"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 30, "starts like a PNG"),
    ],
)
def test_non_images_are_not_an_image(data, named):
    with pytest.raises(ImageRejected) as caught:
        probe_bytes(data)
    assert caught.value.reason == "not_an_image"
    assert named in caught.value.message


def test_names_do_not_matter():
    png = corpus_bytes("valid/hopper.png")
    assert probe_bytes(png).format == "PNG"
    with pytest.raises(ImageRejected):
        probe(corpus_path("invalid/text.png"))


# --- hashes -------------------------------------------------------------------

LANDSCAPES = [f"orientation/Landscape_{i}.jpg" for i in range(9)]
PORTRAITS = [f"orientation/Portrait_{i}.jpg" for i in range(9)]
HOPPERS = [
    *(f"orientation/hopper_orientation_{i}.{ext}" for i in range(2, 9) for ext in ("jpg", "webp")),
    *(
        f"valid/hopper.{ext}"
        for ext in ("jpg", "png", "gif", "bmp", "tif", "Lab.tif", "avif", "heif")
    ),
]
# Measured: 0 for both photo sets (each file is one picture stored 8 ways),
# at most 2 for the tiny 128 px hopper set (JPEG, WebP and 7 other formats);
# unrelated corpus pictures differ by 24 to 42 bits.
SAME_PICTURE_MAX_DISTANCE = 4


def max_pairwise_distance(names: list[str]) -> int:
    phashes = [probe(corpus_path(name)).phash for name in names]
    return max(hashes.hamming(a, b) for a, b in itertools.combinations(phashes, 2))


@pytest.mark.parametrize(
    "names", [LANDSCAPES, PORTRAITS, HOPPERS], ids=["landscape", "portrait", "hopper"]
)
def test_phash_ignores_how_exif_orientation_stores_a_picture(names):
    assert max_pairwise_distance(names) <= SAME_PICTURE_MAX_DISTANCE


def test_phash_tells_different_pictures_apart():
    photos = ["valid/hopper.jpg", "orientation/Landscape_1.jpg", "orientation/Portrait_1.jpg"]
    phashes = [probe(corpus_path(name)).phash for name in photos]
    for a, b in itertools.combinations(phashes, 2):
        assert hashes.hamming(a, b) >= 20


def test_phash_of_a_rotated_copy_without_orientation_tag_differs():
    # The hash follows what is displayed: physically rotating the pixels
    # (without a tag to undo it) is a different picture.
    upright = probe(corpus_path("orientation/Landscape_1.jpg")).phash
    with Image.open(corpus_path("orientation/Landscape_1.jpg")) as im:
        rotated = probe_bytes(saved(im.transpose(Image.Transpose.ROTATE_90), "JPEG")).phash
    assert hashes.hamming(upright, rotated) >= 20


def test_phash_survives_scaling_and_recompression():
    with Image.open(corpus_path("orientation/Landscape_1.jpg")) as im:
        big = im.resize((3600, 2400))  # above the point-sampling threshold
        small = im.resize((450, 300))
    original = probe(corpus_path("orientation/Landscape_1.jpg")).phash
    for copy in (saved(big, "JPEG", quality=70), saved(small, "PNG")):
        assert hashes.hamming(original, probe_bytes(copy).phash) <= SAME_PICTURE_MAX_DISTANCE


def test_blurhash_matches_the_reference_encoder():
    for name in ["valid/hopper.jpg", "valid/flower.jpg", "orientation/Portrait_6.jpg"]:
        with Image.open(corpus_path(name)) as im:
            im.load()
            small = hashes.hashing_image(im, exif.read_exif(im).orientation)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # it calls getdata()
            for components in [(4, 3), (3, 4), (9, 9), (1, 1)]:
                expected = reference_blurhash.encode(small.copy(), *components)
                assert hashes.blurhash(small, components) == expected


def test_blurhash_shape_follows_the_displayed_aspect():
    landscape = probe(corpus_path("orientation/Portrait_6.jpg"))  # stored landscape
    assert landscape.stored_width > landscape.stored_height
    assert landscape.blurhash[0] == hashes.BLURHASH_ALPHABET[(3 - 1) + (4 - 1) * 9]  # 3x4
    assert_valid_blurhash(landscape.blurhash)


def test_transparent_pixels_are_flattened_on_white_for_hashing():
    clear = Image.new("RGBA", (64, 64), (0, 0, 0, 0))  # black, but invisible
    white = Image.new("RGB", (64, 64), (255, 255, 255))
    assert probe_bytes(saved(clear, "PNG")).blurhash == probe_bytes(saved(white, "PNG")).blurhash


def test_sixteen_bit_images_are_scaled_not_clipped_for_hashing():
    gradient = Image.linear_gradient("L").resize((256, 256))
    wide = Image.fromarray(np.asarray(gradient).astype(np.uint16) * 257)
    info = probe_bytes(saved(wide, "PNG"))
    assert info.mode.startswith("I")
    assert info.phash == probe_bytes(saved(gradient, "PNG")).phash
    assert info.blurhash == probe_bytes(saved(gradient, "PNG")).blurhash


def test_hamming():
    assert hashes.hamming("ff00", "0f01") == 5
    assert hashes.hamming("d6cd9bb2383264e4", "d6cd9bb2383264e4") == 0
