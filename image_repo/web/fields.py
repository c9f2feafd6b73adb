"""Marshmallow fields shared by the endpoints' input schemas."""

from __future__ import annotations

from datetime import UTC

import marshmallow as ma


class UTCDateTime(ma.fields.AwareDateTime):
    """An ISO-8601 time with its offset that must also exist in UTC.

    ``0001-01-01T00:00:00+01:00`` is valid ISO-8601 but lies before year 1 in
    UTC: refused here (422) rather than failing in the database.
    """

    def _deserialize(self, value, attr, data, **kwargs):
        moment = super()._deserialize(value, attr, data, **kwargs)
        try:
            moment.astimezone(UTC)
        except OverflowError as exc:
            raise ma.ValidationError("Not a time that exists in UTC (year 1 to 9999).") from exc
        return moment
