"""Marshmallow fields shared by the endpoints' input schemas."""

from __future__ import annotations

import re
from datetime import UTC

import marshmallow as ma
from marshmallow import validate

# C0 controls but tab and line feed, DEL, C1 controls, and UTF-16 surrogates
# (a JSON "\ud800" alone is no character: no database can store it).
_REFUSED_IN_TEXT = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
# The same rule for the spec, before CR becomes LF; surrogates are left out, as
# a JSON Schema pattern sees a string's characters, never half of one.
REFUSED_IN_TEXT_SCHEMA = {
    "type": "string",  # so that null, where allowed, is not refused
    "pattern": "[\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f]",
}


class Text(ma.fields.String):
    """Text from a client: every string an operation reads is one of these.

    Tab and line breaks are kept (CRLF and CR, as HTML forms send them,
    become LF); any other control character is refused (422 naming the
    field), NUL included, which PostgreSQL cannot store. The spec states
    the rule as ``not: {pattern: ...}`` (a ``pattern`` of its own would make
    Swagger UI fill forms with text generated from it).
    """

    default_error_messages = {
        "control": "Control characters other than tab and line feed are not allowed "
        "(found U+{code:04X} at position {position})."
    }
    # Whether the spec shows the rule (an enum says all there is to say).
    publish_rule = True

    def __init__(self, *args, **kwargs) -> None:
        if self.publish_rule:
            kwargs["metadata"] = {"not": REFUSED_IN_TEXT_SCHEMA, **kwargs.get("metadata", {})}
        super().__init__(*args, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        found = _REFUSED_IN_TEXT.search(text)
        if found:
            raise self.make_error("control", code=ord(found.group()), position=found.start())
        return text


class FormText(Text):
    """Text in a multipart form: the same rule, kept out of the spec, as
    schemathesis (4.32) cannot judge a ``not`` against a form that holds a
    file (``ValueError: Unsupported type: 'Binary'``)."""

    publish_rule = False


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


class TimeBound(UTCDateTime):
    """One end of a time filter: an ISO-8601 time, or a date, read in UTC.

    A date means midnight UTC at its start and a time without an offset is
    UTC. Filters include their ``_after`` bound and exclude their ``_before``
    bound, so ``after=2024-05-01&before=2024-06-01`` is exactly May (UTC).
    """

    READING = (
        "An ISO-8601 time, or a date: a date (`2024-05-01`) means midnight UTC at its "
        "start, and a time without an offset is UTC."
    )

    def __init__(self, description: str, **kwargs) -> None:
        super().__init__(
            default_timezone=UTC,
            metadata={"description": f"{description} {self.READING}"},
            **kwargs,
        )


class Choice(Text):
    """One of a few names, in any case: read as lower case and published so."""

    publish_rule = False

    def __init__(self, choices, **kwargs) -> None:
        self.choices = [choice.lower() for choice in choices]
        super().__init__(validate=validate.OneOf(self.choices), **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        return super()._deserialize(value, attr, data, **kwargs).lower()


class JsonBoolean(ma.fields.Boolean):
    """A boolean in a JSON body: only ``true`` or ``false``.

    marshmallow's Boolean also takes 0, 1, "yes", "on" and the like, which
    suits a query string but lets a JSON client's type error pass unseen.
    """

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value
