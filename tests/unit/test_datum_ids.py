"""Datum ids and hashes keep their bytes: a datum processed before is recognised after an
upgrade only if its hash is what it was (the standard library's JSON of names, paths and content
hashes), whichever encoder makes it now."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from tusk.pps.datums import DatumInput, datum_hash, datum_id
from tusk.storage.hashing import hash_bytes

# paths as users name them: ASCII with its control characters and DEL, accents, emoji, U+2028
TEXT = st.text(
    alphabet=st.sampled_from([chr(i) for i in range(128)] + ["é", "ß", "\u2028", "😀", "日"]),
    max_size=12,
)


def datum(parts: list[tuple[str, str, str]]) -> tuple[DatumInput, ...]:
    return tuple(
        DatumInput(name, "repo", "master", "c1", "root", path, content, 1, "file")
        for name, path, content in parts
    )


@settings(max_examples=500)
@given(st.lists(st.tuples(TEXT, TEXT, TEXT), min_size=1, max_size=3), TEXT, TEXT)
def test_ids_and_hashes_are_those_of_the_standard_librarys_json(
    parts: list[tuple[str, str, str]], pipeline: str, salt: str
) -> None:
    d = datum(parts)
    ids = [[p, h] for _, p, h in parts]
    hashed = [[[n, p, h] for n, p, h in parts], pipeline, salt]
    assert datum_id(d) == hash_bytes(json.dumps(ids, separators=(",", ":")).encode())
    assert datum_hash(d, pipeline, salt) == hash_bytes(
        json.dumps(hashed, separators=(",", ":")).encode()
    )


def test_paths_the_encoders_write_differently_keep_their_hash() -> None:
    # orjson writes these characters as they are; the standard library escapes them
    for path in ["/caf\u00e9", "/a\x7fb", "/\u2028", "/😀"]:
        d = datum([("in", path, "h" * 64)])
        expected = json.dumps([[path, "h" * 64]], separators=(",", ":")).encode()
        assert b"\\u" in expected
        assert datum_id(d) == hash_bytes(expected)
