"""express.asl.uuids: the text of a random version-4 UUID, as uuid.UUID reads it back."""
from __future__ import annotations

import uuid

from express.asl.uuids import uuid4


def test_every_uuid_is_version_4_of_rfc_4122_in_canonical_text() -> None:
    seen = set()
    for _ in range(2000):
        text = uuid4()
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant, str(parsed)) == (4, uuid.RFC_4122, text)
        seen.add(text)
    assert len(seen) == 2000
    # every variant digit appears: the two random bits of that nibble are kept
    assert {text[19] for text in seen} == set("89ab")
