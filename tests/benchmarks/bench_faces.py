"""Faces: upload answer time with analysis on vs off, analysis vs dlib on the full decode,
nearest-person look-up at 100,000 faces vs 1,000.

Three measurements, each a ratio against a baseline taken in the same run:

1. **Upload, analysis on vs off.** ``POST /images`` (through the test client)
   of a face photo by a tenant whose face switch is on, against one whose
   switch is off (operator setting on for both). Analysis runs after the
   answer (a queued job), so the answer must not wait for it. Target: at
   most 1.05x, on each side's fastest answer (the one least slowed by other
   work on a shared machine); medians and CPU time are reported beside it.
   Each upload gets bytes of its own (a distinct JPEG comment).
2. **Analysis of a 24 MP JPEG vs dlib on its full decode.** What the "faces"
   job does with an original (``imaging.faces.analyse``: a DCT-scaled decode
   to 1024 px, detection upsampled once, 5-point landmarks and descriptors),
   against Pillow's full decode plus dlib's detector (not upsampled: the
   cheapest way to run it on 24 MP) and the same landmarks and descriptors.
   Target: at most 0.3x.
3. **Nearest person at 100,000 faces vs 1,000.** ``people.nearest_person``
   (the look-up a new face makes) in a tenant with 100,000 faces of 2,000
   people, against one with 1,000 faces of 20 people, on SQLite; the people's
   means are cached per process, so a look-up reads one revision token and
   compares with one row per person. Target: at most 2x. The cold load (first
   look-up after a change elsewhere) and a whole ``assign`` are reported too.

Sides are alternated and medians kept; a miss is printed, never failed.

=========================  =========  ===========================================
variable                   default    meaning
=========================  =========  ===========================================
``BENCH_FACES_UPLOADS``    40         uploads per side (benchmark 1)
``BENCH_FACES_ROUNDS``     3          analyses per side (benchmark 2)
``BENCH_FACES_LOOKUPS``    300        look-ups per side (benchmark 3)
=========================  =========  ===========================================

Run: ``.venv/bin/python -m pytest tests/benchmarks/bench_faces.py -o python_files='bench_*.py' -s -n 0``
"""

from __future__ import annotations

import contextlib
import io
import os
import statistics
import time
from pathlib import Path

import numpy as np
from sqlalchemy import insert

from image_repo.db.models import Face, Person
from image_repo.db.types import utcnow
from image_repo.domain import people
from image_repo.domain.ids import new_id
from image_repo.http.context import services_of
from image_repo.imaging import faces as face_finder
from tests.conftest import create_tenant, make_app
from tests.support.faces import face_path

from .harness import environment_info, write_results
from .image_fixtures import jpeg_variants, photo_like_jpeg

UPLOAD_TARGET = 1.05
ANALYSIS_TARGET = 0.3
LOOKUP_TARGET = 2.0

ANALYSIS_SIZE = (6400, 3757)  # 24 MP, the aspect ratio of two_people.jpg
FACES_PER_PERSON = 50


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _app(tmp_path: Path, **config):
    return make_app(
        {
            "TESTING": True,
            "ENV": "development",
            "DATA_DIR": tmp_path / "data",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'bench.db'}",
            "REDIS_URL": None,
            "RATELIMIT_ENABLED": False,
            "FACES": True,
            **config,
        }
    )


def _ratio_line(ratio: float, target: float, *, at_least: bool = False) -> str:
    met = ratio >= target if at_least else ratio <= target
    sign = ">=" if at_least else "<="
    return f"ratio {ratio:.3f} (target {sign} {target}: {'met' if met else 'NOT met'})"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


@contextlib.contextmanager
def _quiet():
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        yield


# --- 1. upload with analysis on vs off -------------------------------------------


def test_upload_with_faces_on_vs_off(tmp_path, bench_settings):
    uploads = _env_int("BENCH_FACES_UPLOADS", 40)
    app = _app(tmp_path)
    client = app.test_client()
    on, off = create_tenant(app, "faces-on"), create_tenant(app, "faces-off")
    assert (
        client.patch("/account/faces", json={"enabled": True}, headers=on.headers()).status_code
        == 200
    )
    variants = jpeg_variants(face_path("two_people.jpg"), 2 * (uploads + 1), tmp_path / "v")
    times: dict[str, list[float]] = {"on": [], "off": []}

    cpu: dict[str, list[float]] = {"on": [], "off": []}

    def upload(tenant, path: Path) -> float:
        body = {"image": (io.BytesIO(path.read_bytes()), path.name)}
        start, start_cpu = time.perf_counter(), time.process_time()
        response = client.post(
            "/images", data=body, headers=tenant.headers(), content_type="multipart/form-data"
        )
        elapsed = time.perf_counter() - start
        assert response.status_code == 201, response.json
        cpu["on" if tenant is on else "off"].append(time.process_time() - start_cpu)
        return elapsed

    with _quiet():
        upload(on, variants[0])  # warm-up, both sides
        upload(off, variants[1])
        cpu["on"].clear()
        cpu["off"].clear()
        for i in range(uploads):
            # Which side goes first alternates too: neither always follows the other.
            sides = [("on", on), ("off", off)][:: 1 if i % 2 else -1]
            for j, (name, tenant) in enumerate(sides):
                times[name].append(upload(tenant, variants[2 + 2 * i + j]))
    # On a machine shared with other work, each side's fastest answer is the one
    # least slowed by others (as the load benchmarks keep each side's best run);
    # medians and CPU time are shown beside it.
    best = min(times["on"]) / min(times["off"])
    median = statistics.median(times["on"]) / statistics.median(times["off"])
    cpu_ratio = statistics.median(cpu["on"]) / statistics.median(cpu["off"])
    print(
        f"\nupload answer time, faces on vs off ({uploads} each): best {_ms(min(times['on']))} "
        f"vs {_ms(min(times['off']))}: {_ratio_line(best, UPLOAD_TARGET)}; medians "
        f"{_ms(statistics.median(times['on']))} vs {_ms(statistics.median(times['off']))} "
        f"(ratio {median:.3f}); CPU per upload, medians: ratio {cpu_ratio:.3f}"
    )
    write_results(
        "faces_upload",
        {
            "on_s": times["on"],
            "off_s": times["off"],
            "on_cpu_s": cpu["on"],
            "off_cpu_s": cpu["off"],
            "ratio_best": best,
            "ratio_median": median,
            "ratio_cpu": cpu_ratio,
            **environment_info(),
        },
        bench_settings.results_dir,
    )


# --- 2. analysis of a 24 MP JPEG vs dlib on the full decode ----------------------


def _dlib_on_full_decode(path: Path) -> int:
    from PIL import Image

    models = face_finder.models()
    with Image.open(path) as im:
        pixels = np.asarray(im.convert("RGB"))
    rects = models.detector(pixels, 0)
    for rect in rects:
        shape = models.landmarks(pixels, rect)
        models.descriptor.compute_face_descriptor(pixels, shape)
    return len(rects)


def test_analysis_vs_dlib_on_the_full_decode(tmp_path, bench_settings):
    rounds = _env_int("BENCH_FACES_ROUNDS", 3)
    path = photo_like_jpeg(
        tmp_path / "faces-24mp.jpg", ANALYSIS_SIZE, source=face_path("two_people.jpg"), noise=4
    )
    face_finder.models()  # loading the models is not part of either side

    def ours() -> int:
        return len(face_finder.analyse(path, ANALYSIS_SIZE))

    times: dict[str, list[float]] = {"ours": [], "dlib": []}
    found: dict[str, int] = {}
    for _ in range(rounds):
        for name, run in (("ours", ours), ("dlib", lambda: _dlib_on_full_decode(path))):
            start = time.perf_counter()
            found[name] = run()
            times[name].append(time.perf_counter() - start)
    ours_s, dlib_s = statistics.median(times["ours"]), statistics.median(times["dlib"])
    ratio = ours_s / dlib_s
    print(
        f"\nface analysis of a 24 MP JPEG ({path.stat().st_size / 2**20:.1f} MiB): ours "
        f"{_ms(ours_s)} ({found['ours']} faces) vs dlib on the full decode {_ms(dlib_s)} "
        f"({found['dlib']} faces), median of {rounds}: {_ratio_line(ratio, ANALYSIS_TARGET)}"
    )
    write_results(
        "faces_analysis",
        {**times, "found": found, "ratio": ratio, **environment_info()},
        bench_settings.results_dir,
    )


# --- 3. nearest person at 100,000 faces vs 1,000 ----------------------------------


def _fill(app, tenant_id: str, n_faces: int, rng: np.random.Generator) -> np.ndarray:
    """``n_faces`` faces of ``n_faces / FACES_PER_PERSON`` people, written in bulk; the
    people's centres."""
    n_people = n_faces // FACES_PER_PERSON
    centres = rng.normal(0, 0.09, (n_people, face_finder.DESCRIPTOR_SIZE)).astype(np.float32)
    session = services_of(app).sessions()
    now = utcnow()
    try:
        person_rows, face_rows = [], []
        for centre in centres:
            person_id = new_id("per")
            members = centre + rng.normal(0, 0.015, (FACES_PER_PERSON, len(centre)))
            members = members.astype(np.float32)
            person_rows.append(
                {
                    "id": person_id,
                    "tenant_id": tenant_id,
                    "hidden": False,
                    "descriptor_sum": members.sum(0, dtype=np.float64).astype("<f8").tobytes(),
                    "descriptor_count": FACES_PER_PERSON,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            face_rows += [
                {
                    "id": new_id("fce"),
                    "tenant_id": tenant_id,
                    "image_id": None,
                    "person_id": person_id,
                    "box_left": 0,
                    "box_top": 0,
                    "box_width": 10,
                    "box_height": 10,
                    "descriptor": face_finder.descriptor_bytes(member),
                    "created_at": now,
                }
                for member in members
            ]
        session.execute(insert(Person), person_rows)
        image_id = _one_image(app, session, tenant_id)
        for row in face_rows:
            row["image_id"] = image_id
        for start in range(0, len(face_rows), 10_000):
            session.execute(insert(Face), face_rows[start : start + 10_000])
        people.people_changed(session, tenant_id)
        session.commit()
    finally:
        session.close()
    return centres


def _one_image(app, session, tenant_id: str) -> str:
    """An image row for the faces to belong to (they need one; which one does not matter)."""
    from image_repo.db.models import Image

    now = utcnow()
    image_id = new_id("img")
    session.add(
        Image(
            id=image_id, tenant_id=tenant_id, sha256=os.urandom(32).hex(), filename="x.jpg",
            uploaded_at=now, updated_at=now, sort_time=now, format="JPEG",
            mime_type="image/jpeg", bytes=1, width=10, height=10, stored_width=10,
            stored_height=10, frames=1, animated=False, color_mode="RGB", has_alpha=False,
            has_icc=False, orientation=1, has_gps=False,
        )
    )  # fmt: skip
    session.flush()
    return image_id


def test_nearest_person_100k_vs_1k(tmp_path, bench_settings):
    lookups = _env_int("BENCH_FACES_LOOKUPS", 300)
    app = _app(tmp_path)
    rng = np.random.default_rng(14)
    small, large = create_tenant(app, "small"), create_tenant(app, "large")
    started = time.perf_counter()
    centres = {
        "1k": (small.tenant_id, _fill(app, small.tenant_id, 1_000, rng)),
        "100k": (large.tenant_id, _fill(app, large.tenant_id, 100_000, rng)),
    }
    print(f"\nfilled 101,000 faces in {time.perf_counter() - started:.1f} s")
    sessions = services_of(app).sessions

    def queries(side: str) -> np.ndarray:
        _tenant, known = centres[side]
        picks = known[rng.integers(0, len(known), lookups)]
        return (picks + rng.normal(0, 0.015, picks.shape)).astype(np.float32)

    cold: dict[str, float] = {}
    times: dict[str, list[float]] = {"1k": [], "100k": []}
    hits: dict[str, int] = {"1k": 0, "100k": 0}
    session = sessions()
    try:
        for side, (tenant_id, _known) in centres.items():
            start = time.perf_counter()
            people.nearest_person(session, tenant_id, queries(side)[0])  # loads the means
            cold[side] = time.perf_counter() - start
        asked = {side: queries(side) for side in centres}
        for i in range(lookups):
            for side, (tenant_id, _known) in centres.items():
                start = time.perf_counter()
                found = people.nearest_person(session, tenant_id, asked[side][i])
                times[side].append(time.perf_counter() - start)
                hits[side] += found is not None
        session.rollback()
    finally:
        session.close()

    # A whole assignment (lock, look-up, person row update, new token), for information.
    assign_s: dict[str, float] = {}
    for side, (tenant_id, _known) in centres.items():
        session = sessions()
        try:
            image_id = _one_image(app, session, tenant_id)
            faces = []
            for descriptor in queries(side)[:20]:
                face = Face(
                    id=new_id("fce"), tenant_id=tenant_id, image_id=image_id, box_left=0,
                    box_top=0, box_width=10, box_height=10,
                    descriptor=face_finder.descriptor_bytes(descriptor), created_at=utcnow(),
                )  # fmt: skip
                session.add(face)
                faces.append(face)
            session.flush()
            spent = []
            for face in faces:
                start = time.perf_counter()
                people.assign(session, tenant_id, [face])
                spent.append(time.perf_counter() - start)
            assign_s[side] = statistics.median(spent)
            session.commit()
        finally:
            session.close()

    small_s, large_s = statistics.median(times["1k"]), statistics.median(times["100k"])
    ratio = large_s / small_s
    print(
        f"nearest person: 100,000 faces (2,000 people) {_ms(large_s)} vs 1,000 faces "
        f"(20 people) {_ms(small_s)}, median of {lookups}: {_ratio_line(ratio, LOOKUP_TARGET)}\n"
        f"  matched a person: {hits['100k']}/{lookups} and {hits['1k']}/{lookups}; "
        f"cold load {_ms(cold['100k'])} vs {_ms(cold['1k'])}; "
        f"one assign {_ms(assign_s['100k'])} vs {_ms(assign_s['1k'])}"
    )
    write_results(
        "faces_nearest",
        {
            "median_s": {"100k": large_s, "1k": small_s},
            "cold_s": cold,
            "assign_s": assign_s,
            "ratio": ratio,
            **environment_info(),
        },
        bench_settings.results_dir,
    )
