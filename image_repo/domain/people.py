"""People: a tenant's faces grouped by who they are.

A new face joins the person whose faces it is nearest to, if that is under
``imaging.faces.SAME_PERSON``, else it starts a person of its own. "Nearest"
is measured to the mean of each person's descriptors, kept in the person's
row as a sum and a count, so a look-up compares a face with one row per
person, not with every face: a tenant with 100,000 faces of 2,000 people
costs 2,000 distances, done at once with numpy.

Each process keeps the people's means of the tenants it has seen (``_INDEX``),
tagged with the tenant's ``people_revision``: a random token every change to
the tenant's people replaces, in the same transaction. An assignment first
takes the tenant row's write lock (one assignment per tenant at a time, so
two faces of one newcomer cannot start two people), then compares the token
with its cache's, and reloads the means only when another process changed
them. A token, not a counter, so that a cache updated by a transaction that
was then rolled back never matches what the database holds.

``regroup`` re-clusters all of a tenant's faces with dlib's Chinese-whispers
clustering, keeping names: each new group becomes the person most of its
faces belonged to (a named one first).
"""

from __future__ import annotations

import secrets
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from sqlalchemy import delete, func, select, tuple_, update
from sqlalchemy.orm import Session

from image_repo.db.models import Face, Image, Person, Tenant
from image_repo.db.types import utcnow
from image_repo.domain.errors import InvalidInput, NotFound
from image_repo.domain.ids import new_id
from image_repo.domain.trash import NOT_TRASHED
from image_repo.imaging.faces import DESCRIPTOR_SIZE, SAME_PERSON, descriptor_of

MAX_CACHED_TENANTS = 64


def _new_token() -> int:
    # Positive and within a signed 64-bit column on every database.
    return secrets.randbits(62) + 1


# --- the per-process index of people's means ----------------------------------


@dataclass
class PersonIndex:
    """The means of a tenant's people, as of ``revision``."""

    revision: int
    ids: list[str] = field(default_factory=list)
    sums: np.ndarray = field(default_factory=lambda: np.zeros((0, DESCRIPTOR_SIZE)))
    counts: np.ndarray = field(default_factory=lambda: np.zeros(0))
    means: np.ndarray = field(default_factory=lambda: np.zeros((0, DESCRIPTOR_SIZE), np.float32))
    # Squared lengths of the means: |m - d|^2 = |m|^2 - 2 m.d + |d|^2 needs one
    # matrix-vector product per look-up and no temporary the size of the index.
    norms: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    rows: dict[str, int] = field(default_factory=dict)

    def nearest(self, descriptor: np.ndarray) -> tuple[str, float] | None:
        """The person whose mean is nearest ``descriptor``, and the distance; None if none."""
        if not self.ids:
            return None
        query = np.asarray(descriptor, np.float32)
        best = int(np.argmin(self.norms - 2.0 * (self.means @ query)))
        return self.ids[best], float(np.linalg.norm(self.means[best] - query))

    def _refresh(self, row: int | None = None) -> None:
        if row is None:
            self.means = (self.sums / self.counts[:, None]).astype(np.float32)
            self.norms = np.einsum("ij,ij->i", self.means, self.means)
            return
        self.means[row] = (self.sums[row] / self.counts[row]).astype(np.float32)
        self.norms[row] = float(self.means[row] @ self.means[row])

    def add(self, person_id: str, descriptor: np.ndarray) -> None:
        row = self.rows.get(person_id)
        if row is None:
            self.rows[person_id] = len(self.ids)
            self.ids.append(person_id)
            self.sums = np.vstack([self.sums, descriptor.astype(np.float64)])
            self.counts = np.append(self.counts, 1.0)
            self.means = np.vstack([self.means, descriptor.astype(np.float32)])
            self.norms = np.append(self.norms, np.float32(descriptor @ descriptor))
            return
        self.sums[row] += descriptor
        self.counts[row] += 1
        self._refresh(row)


_INDEX: OrderedDict[str, PersonIndex] = OrderedDict()
_INDEX_LOCK = threading.Lock()


def _cached(tenant_id: str, revision: int) -> PersonIndex | None:
    with _INDEX_LOCK:
        index = _INDEX.get(tenant_id)
        if index is None or index.revision != revision:
            return None
        _INDEX.move_to_end(tenant_id)
        return index


def _keep(tenant_id: str, index: PersonIndex) -> None:
    with _INDEX_LOCK:
        _INDEX[tenant_id] = index
        _INDEX.move_to_end(tenant_id)
        while len(_INDEX) > MAX_CACHED_TENANTS:
            _INDEX.popitem(last=False)


def _load(session: Session, tenant_id: str, revision: int) -> PersonIndex:
    rows = session.execute(
        select(Person.id, Person.descriptor_sum, Person.descriptor_count).where(
            Person.tenant_id == tenant_id, Person.descriptor_count > 0
        )
    ).all()
    index = PersonIndex(revision)
    if rows:
        index.ids = [row.id for row in rows]
        index.rows = {person_id: i for i, person_id in enumerate(index.ids)}
        index.sums = np.stack([np.frombuffer(row.descriptor_sum, "<f8") for row in rows]).copy()
        index.counts = np.array([row.descriptor_count for row in rows], np.float64)
        index._refresh()
    return index


def _lock_tenant(session: Session, tenant_id: str) -> int:
    """Take the tenant row's write lock; its current people revision."""
    session.execute(
        update(Tenant)
        .where(Tenant.id == tenant_id)
        .values(people_revision=Tenant.people_revision)
        .execution_options(synchronize_session=False)
    )
    revision = session.scalar(select(Tenant.people_revision).where(Tenant.id == tenant_id))
    if revision is None:
        raise NotFound(f"No tenant {tenant_id!r}.")
    return revision


def _set_revision(session: Session, tenant_id: str, revision: int) -> None:
    session.execute(
        update(Tenant)
        .where(Tenant.id == tenant_id)
        .values(people_revision=revision)
        .execution_options(synchronize_session=False)
    )


def people_changed(session: Session, tenant_id: str) -> None:
    """Record that a tenant's people changed: every process's cached means go stale."""
    _lock_tenant(session, tenant_id)
    _set_revision(session, tenant_id, _new_token())


def index_of(session: Session, tenant_id: str) -> PersonIndex:
    """The tenant's people's means as the database holds them now (cached per process)."""
    revision = session.scalar(select(Tenant.people_revision).where(Tenant.id == tenant_id))
    if revision is None:
        raise NotFound(f"No tenant {tenant_id!r}.")
    index = _cached(tenant_id, revision)
    if index is None:
        index = _load(session, tenant_id, revision)
        _keep(tenant_id, index)
    return index


def nearest_person(session: Session, tenant_id: str, descriptor: np.ndarray) -> str | None:
    """The person a face with ``descriptor`` belongs to, or None for a newcomer."""
    found = index_of(session, tenant_id).nearest(descriptor)
    return found[0] if found is not None and found[1] < SAME_PERSON else None


# --- assignment ----------------------------------------------------------------


def _add_to_sum(person: Person, descriptor: np.ndarray, sign: int = 1) -> None:
    total = (
        np.frombuffer(person.descriptor_sum, "<f8").copy()
        if person.descriptor_sum
        else np.zeros(DESCRIPTOR_SIZE)
    )
    total += sign * descriptor.astype(np.float64)
    person.descriptor_count = max(0, person.descriptor_count + sign)
    person.descriptor_sum = total.astype("<f8").tobytes() if person.descriptor_count else None
    person.updated_at = utcnow()


def assign(session: Session, tenant_id: str, faces: list[Face]) -> None:
    """Give each new face (flushed, without a person) its person: the nearest, or a new one."""
    if not faces:
        return
    revision = _lock_tenant(session, tenant_id)
    index = _cached(tenant_id, revision) or _load(session, tenant_id, revision)
    people: dict[str, Person] = {}
    for face in faces:
        descriptor = descriptor_of(face.descriptor)
        found = index.nearest(descriptor)
        if found is not None and found[1] < SAME_PERSON:
            person = people.get(found[0]) or session.get(Person, found[0])
        else:
            person = None
        if person is None:
            now = utcnow()
            person = Person(
                id=new_id("per"),
                tenant_id=tenant_id,
                hidden=False,
                descriptor_count=0,
                created_at=now,
                updated_at=now,
                cover_face_id=face.id,
            )
            session.add(person)
            session.flush()  # the row before the faces that refer to it
        people[person.id] = person
        _add_to_sum(person, descriptor)
        face.person_id = person.id
        index.add(person.id, descriptor)
    index.revision = _new_token()
    _set_revision(session, tenant_id, index.revision)
    session.flush()
    _keep(tenant_id, index)


# --- reading -------------------------------------------------------------------


@dataclass(frozen=True)
class PersonView:
    """A person with what is counted at read time: its faces (in images of the library,
    not the trash) and its cover."""

    person: Person
    face_count: int
    cover_face_id: str | None

    def __getattr__(self, name: str):
        return getattr(self.person, name)


@dataclass(frozen=True)
class PeoplePage:
    items: list[PersonView]
    next_after: tuple[datetime, str] | None


def _views(session: Session, people: list[Person]) -> list[PersonView]:
    if not people:
        return []
    counts = {
        row.person_id: (row.n, row.first)
        for row in session.execute(
            select(Face.person_id, func.count().label("n"), func.min(Face.id).label("first"))
            .join(Image, Image.id == Face.image_id)
            .where(Face.person_id.in_([p.id for p in people]), NOT_TRASHED)
            .group_by(Face.person_id)
        )
    }
    covers = {
        row.id
        for row in session.execute(
            select(Face.id)
            .join(Image, Image.id == Face.image_id)
            .where(
                Face.id.in_([p.cover_face_id for p in people if p.cover_face_id]),
                Face.person_id.in_([p.id for p in people]),
                NOT_TRASHED,
            )
        )
    }
    views = []
    for person in people:
        n, first = counts.get(person.id, (0, None))
        cover = person.cover_face_id if person.cover_face_id in covers else first
        views.append(PersonView(person, n, cover))
    return views


def _has_faces():
    """The person has a face in an image of the library (not in the trash)."""
    return (
        select(Face.id)
        .join(Image, Image.id == Face.image_id)
        .where(Face.person_id == Person.id, NOT_TRASHED)
        .exists()
    )


def list_people(
    session: Session,
    tenant_id: str,
    *,
    include_hidden: bool = False,
    after: tuple[datetime, str] | None = None,
    limit: int = 50,
) -> PeoplePage:
    """The tenant's people who have faces, first found first."""
    query = select(Person).where(Person.tenant_id == tenant_id, _has_faces())
    if not include_hidden:
        query = query.where(Person.hidden.is_(False))
    if after is not None:
        query = query.where(tuple_(Person.created_at, Person.id) > tuple_(*after))
    rows = list(session.scalars(query.order_by(Person.created_at, Person.id).limit(limit + 1)))
    items = rows[:limit]
    more = len(rows) > limit and items
    return PeoplePage(
        _views(session, items), (items[-1].created_at, items[-1].id) if more else None
    )


def _person(session: Session, tenant_id: str, person_id: str) -> Person:
    person = session.scalar(
        select(Person).where(Person.id == person_id, Person.tenant_id == tenant_id)
    )
    if person is None:
        raise NotFound(f"No person {person_id!r}.")
    return person


def get_person(session: Session, tenant_id: str, person_id: str) -> PersonView:
    return _views(session, [_person(session, tenant_id, person_id)])[0]


# --- changes people ask for ------------------------------------------------------

_UNSET = object()


def update_person(
    session: Session,
    tenant_id: str,
    person_id: str,
    *,
    name: object = _UNSET,
    hidden: object = _UNSET,
    cover_face_id: object = _UNSET,
) -> PersonView:
    """Rename, hide or show a person, or choose its cover (one of its faces)."""
    person = _person(session, tenant_id, person_id)
    if name is not _UNSET:
        person.name = name.strip() or None if isinstance(name, str) else None
    if hidden is not _UNSET:
        person.hidden = bool(hidden)
    if cover_face_id is not _UNSET and cover_face_id is not None:
        owner = session.scalar(
            select(Face.person_id).where(Face.id == cover_face_id, Face.tenant_id == tenant_id)
        )
        if owner != person.id:
            raise InvalidInput(
                "The cover must be one of the person's faces.",
                json={"cover_face_id": ["not a face of this person"]},
            )
        person.cover_face_id = cover_face_id
    person.updated_at = utcnow()
    session.flush()
    return get_person(session, tenant_id, person_id)


def merge(session: Session, tenant_id: str, person_id: str, others: list[str]) -> PersonView:
    """Move every face of ``others`` to ``person_id`` and delete them; names stay the target's
    (or the first named other's when the target has none)."""
    target = _person(session, tenant_id, person_id)
    if not others:
        raise InvalidInput(
            "Name at least one person to merge.",
            json={"people": ["Shorter than minimum length 1."]},
        )
    sources = [_person(session, tenant_id, other) for other in dict.fromkeys(others)]
    if any(source.id == target.id for source in sources):
        raise InvalidInput(
            "A person cannot be merged into itself.", json={"people": ["must not name the target"]}
        )
    people_changed(session, tenant_id)
    total = (
        np.frombuffer(target.descriptor_sum, "<f8").copy()
        if target.descriptor_sum
        else np.zeros(DESCRIPTOR_SIZE)
    )
    for source in sources:
        if source.descriptor_sum:
            total += np.frombuffer(source.descriptor_sum, "<f8")
        target.descriptor_count += source.descriptor_count
        if target.name is None and source.name:
            target.name = source.name
        session.execute(
            update(Face)
            .where(Face.person_id == source.id, Face.tenant_id == tenant_id)
            .values(person_id=target.id)
            .execution_options(synchronize_session=False)
        )
        session.delete(source)
    target.descriptor_sum = total.astype("<f8").tobytes() if target.descriptor_count else None
    target.updated_at = utcnow()
    session.flush()
    return get_person(session, tenant_id, person_id)


def move_face(session: Session, tenant_id: str, face_id: str, person_id: str) -> Face:
    """Give one face to another person of the tenant (fixing a wrong grouping)."""
    face = session.scalar(select(Face).where(Face.id == face_id, Face.tenant_id == tenant_id))
    if face is None:
        raise NotFound(f"No face {face_id!r}.")
    target = session.scalar(
        select(Person).where(Person.id == person_id, Person.tenant_id == tenant_id)
    )
    if target is None:
        raise InvalidInput(
            f"There is no person {person_id!r} to move the face to.",
            json={"person_id": ["no such person"]},
        )
    if face.person_id == target.id:
        return face
    people_changed(session, tenant_id)
    descriptor = descriptor_of(face.descriptor)
    if face.person_id is not None:
        source = session.get(Person, face.person_id)
        if source is not None:
            _add_to_sum(source, descriptor, -1)
    _add_to_sum(target, descriptor)
    face.person_id = target.id
    if target.cover_face_id is None:
        target.cover_face_id = face.id
    session.flush()
    return face


def forget_tenant(session: Session, tenant_id: str) -> tuple[int, int]:
    """Delete every face (with its descriptor) and person of a tenant; (faces, people)."""
    people_changed(session, tenant_id)
    faces = session.execute(
        delete(Face).where(Face.tenant_id == tenant_id).execution_options(synchronize_session=False)
    ).rowcount
    people = session.execute(
        delete(Person)
        .where(Person.tenant_id == tenant_id)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.flush()
    return faces, people


# --- re-grouping ---------------------------------------------------------------


def regroup(session: Session, tenant_id: str, threshold: float = SAME_PERSON) -> int:
    """Re-cluster all of a tenant's faces (dlib's Chinese whispers); how many people result.

    Each cluster becomes the existing person most of its faces had (named people
    first), so names and hidden flags survive; people left without faces go.
    """
    import dlib

    faces = list(session.scalars(select(Face).where(Face.tenant_id == tenant_id)))
    if not faces:
        return 0
    people_changed(session, tenant_id)
    vectors = [dlib.vector(descriptor_of(face.descriptor).tolist()) for face in faces]
    labels = dlib.chinese_whispers_clustering(vectors, threshold)
    existing = {
        p.id: p for p in session.scalars(select(Person).where(Person.tenant_id == tenant_id))
    }
    clusters: dict[int, list[Face]] = {}
    for face, label in zip(faces, labels, strict=True):
        clusters.setdefault(label, []).append(face)
    taken: set[str] = set()
    for members in sorted(clusters.values(), key=len, reverse=True):
        votes = Counter(face.person_id for face in members if face.person_id in existing)
        ranked = sorted(
            (pid for pid in votes if pid not in taken),
            key=lambda pid: (existing[pid].name is None, -votes[pid]),
        )
        if ranked:
            person = existing[ranked[0]]
        else:
            now = utcnow()
            person = Person(
                id=new_id("per"), tenant_id=tenant_id, hidden=False, created_at=now, updated_at=now
            )
            session.add(person)
            session.flush()  # the row before the faces that refer to it
        taken.add(person.id)
        total = np.zeros(DESCRIPTOR_SIZE)
        for face in members:
            face.person_id = person.id
            total += descriptor_of(face.descriptor)
        person.descriptor_sum = total.astype("<f8").tobytes()
        person.descriptor_count = len(members)
        if person.cover_face_id not in {face.id for face in members}:
            person.cover_face_id = members[0].id
        person.updated_at = utcnow()
    session.flush()
    for person_id, person in existing.items():
        if person_id not in taken:
            session.delete(person)
    session.flush()
    return len(clusters)
