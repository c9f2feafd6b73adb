"""How faces and people are presented to clients (plain Python, no Flask)."""

from __future__ import annotations

from image_repo.db.models import Face
from image_repo.domain.people import PersonView


class FaceModel:
    """A face with its box as one object."""

    def __init__(self, face: Face) -> None:
        self.id = face.id
        self.image_id = face.image_id
        self.person_id = face.person_id
        self.box = {
            "left": face.box_left,
            "top": face.box_top,
            "width": face.box_width,
            "height": face.box_height,
        }


class FaceListModel:
    def __init__(self, faces: list[Face]) -> None:
        self.items = [FaceModel(face) for face in faces]


class PeoplePageModel:
    def __init__(self, people: list[PersonView], next_cursor: str | None) -> None:
        self.items = people
        self.next_cursor = next_cursor
