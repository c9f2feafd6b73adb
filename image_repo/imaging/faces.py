"""Faces: where they are in a picture, and a 128-number descriptor of each.

dlib does the work, with the models the ``face-recognition-models`` package
ships (nothing is downloaded at run time): its frontal (HOG) face detector,
its **5-point** landmark model (the 68-point one's training data does not
allow every use; 5 points are all the descriptor's alignment needs) and its
ResNet face descriptor. Two descriptors of one person lie about 0.4 apart
(Euclidean), of two people about 0.8; 0.6 is the usual threshold.

Detection runs on the upright picture scaled to ``ANALYSIS_SIDE`` on its
long edge: a JPEG is decoded at the DCT scale that still leaves that many
pixels (never the full 24 MP), and a caller may pass the original's 1024 px
preview instead. Boxes come back in the *displayed* (upright) original's
pixels, whatever the EXIF orientation and however small the picture looked
at was.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image

from image_repo.imaging import dct, loading, orientation
from image_repo.imaging.limits import DEFAULT_LIMITS, Deadline, DecodeLimits
from image_repo.imaging.render import colour
from image_repo.imaging.render.source import Source, open_image
from image_repo.imaging.streams import seekable
from image_repo.imaging.survey import check_decoded_pixels, survey

# Long edge of the picture the detector sees. The frontal detector finds
# faces from about 80 px wide; upsampling once halves that, so faces of about
# 4% of the picture's long edge are found.
ANALYSIS_SIDE = 1024
UPSAMPLE = 1
DESCRIPTOR_SIZE = 128
# Euclidean distance under which two descriptors are taken to be one person.
SAME_PERSON = 0.6

_MODELS = ("shape_predictor_5_face_landmarks.dat", "dlib_face_recognition_resnet_model_v1.dat")

Src = BinaryIO | str | os.PathLike[str]


@dataclass(frozen=True)
class Box:
    """A face's rectangle in the displayed picture's pixels."""

    left: int
    top: int
    width: int
    height: int


@dataclass(frozen=True)
class FoundFace:
    box: Box
    descriptor: np.ndarray  # float32, DESCRIPTOR_SIZE numbers
    score: float  # the detector's confidence (higher is surer)


def models_folder() -> Path:
    """Where ``face-recognition-models`` keeps its files (found without importing it:
    its ``__init__`` needs ``pkg_resources``, which new setuptools no longer ship)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("face-recognition-models is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


class _Models:
    """dlib's detector, landmark model and descriptor network, loaded once per process."""

    def __init__(self) -> None:
        import dlib  # heavy: imported only where faces are analysed

        folder = models_folder()
        self.detector = dlib.get_frontal_face_detector()
        self.landmarks = dlib.shape_predictor(str(folder / _MODELS[0]))
        self.descriptor = dlib.face_recognition_model_v1(str(folder / _MODELS[1]))
        self.dlib = dlib
        # dlib's objects are not documented as thread-safe: one analysis at a time.
        self.lock = threading.Lock()


@functools.cache
def models() -> _Models:
    return _Models()


def upright_picture(
    src: Src, side: int = ANALYSIS_SIDE, limits: DecodeLimits = DEFAULT_LIMITS
) -> Image.Image:
    """The picture, upright, in sRGB RGB, at most ``side`` pixels on its long edge.

    A JPEG is decoded at the smallest DCT scale that leaves ``side`` pixels;
    other formats are decoded whole (within ``limits``) and reduced.
    """
    deadline = Deadline(limits.decode_seconds)
    with seekable(src) as fp:
        surveyed = survey(fp, limits, deadline)
        with open_image(fp, deadline) as im:
            source = Source.of(im)
            check_decoded_pixels(im.size, limits)
            if im.format in ("JPEG", "MPO"):
                long_edge = max(im.size)
                need = tuple(max(1, n * side // long_edge) for n in im.size)
                dct.draft(im, dct.largest_scale(im.size, need))
            loading.load(im, surveyed, deadline, whole=False)
            frame = colour.working_mode(im, source.plain_cmyk)
            frame = orientation.apply(frame, source.transpose)
            if max(frame.size) > side:
                frame = frame.copy() if frame is im else frame
                frame.thumbnail((side, side), Image.Resampling.BILINEAR, reducing_gap=2.0)
            frame = colour.to_srgb(frame, source.icc)
    if frame.mode == "RGBA":
        # Faces on transparent pixels: what a viewer shows on white.
        flat = Image.new("RGB", frame.size, (255, 255, 255))
        flat.paste(frame, mask=frame.getchannel("A"))
        frame = flat
    return frame


def find_faces(picture: Image.Image, displayed: tuple[int, int]) -> list[FoundFace]:
    """Faces in an upright RGB ``picture`` of a displayed image of size ``displayed``,
    left to right; boxes in the displayed image's pixels."""
    pixels = np.asarray(picture.convert("RGB"))
    m = models()
    with m.lock:
        rects, scores, _kinds = m.detector.run(pixels, UPSAMPLE, 0.0)
        found = []
        for rect, score in zip(rects, scores, strict=True):
            shape = m.landmarks(pixels, rect)
            descriptor = np.asarray(m.descriptor.compute_face_descriptor(pixels, shape), np.float32)
            found.append((rect, descriptor, float(score)))
    sx, sy = displayed[0] / picture.width, displayed[1] / picture.height
    faces = [
        FoundFace(_box(rect, sx, sy, displayed), descriptor, score)
        for rect, descriptor, score in found
    ]
    faces = [face for face in faces if face.box.width > 0 and face.box.height > 0]
    return sorted(faces, key=lambda face: (face.box.left, face.box.top))


def _box(rect, sx: float, sy: float, displayed: tuple[int, int]) -> Box:
    # The detector's rectangles may reach past the picture's edges: clipped.
    left = min(max(0, round(rect.left() * sx)), displayed[0])
    top = min(max(0, round(rect.top() * sy)), displayed[1])
    right = min(max(0, round((rect.right() + 1) * sx)), displayed[0])
    bottom = min(max(0, round((rect.bottom() + 1) * sy)), displayed[1])
    return Box(left, top, right - left, bottom - top)


def analyse(
    src: Src, displayed: tuple[int, int], limits: DecodeLimits = DEFAULT_LIMITS
) -> list[FoundFace]:
    """Faces of the picture in ``src`` (an original, or its preview) whose displayed
    size is ``displayed``."""
    return find_faces(upright_picture(src, ANALYSIS_SIDE, limits), displayed)


def descriptor_bytes(descriptor: np.ndarray) -> bytes:
    return np.asarray(descriptor, dtype="<f4").tobytes()


def descriptor_of(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<f4")
