"""Request ids are RFC 4122 version-4 UUID strings, as AWS's are, and do not repeat."""

from __future__ import annotations

import uuid

from signalite.edge.answers import new_request_id


def test_request_ids_are_uuid4_strings_and_unique():
    ids = [new_request_id() for _ in range(20000)]
    assert len(set(ids)) == len(ids)
    for value in ids[:2000]:
        parsed = uuid.UUID(value)
        assert str(parsed) == value
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
