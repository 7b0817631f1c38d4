"""Hand-written protobuf wire handling for the two bulk messages, where betterproto's generic
code copies the payload several times: GetFile's ``BytesValue`` answers and ModifyFile's
``AddFile`` requests. Everything else goes through betterproto."""

from __future__ import annotations

from pachyderm_sdk.api import pfs

from tusk.errors import InvalidArgument


def encode_bytes_value(data: bytes) -> bytes:
    """``BytesValue{value: data}`` on the wire."""
    return bytes_value_wire([data], len(data))


def bytes_value_wire(parts: list[bytes | memoryview], size: int) -> bytes:
    """``BytesValue{value: b"".join(parts)}`` on the wire (``size`` bytes of payload), the
    payload copied once."""
    return b"".join([b"\x0a" + _varint(size), *parts])


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _read_varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise InvalidArgument("malformed protobuf message (a truncated number)")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _fields(buf: memoryview) -> list[tuple[int, int, memoryview | int]]:
    """(field number, wire type, value) of every field; length-delimited values as views."""
    out: list[tuple[int, int, memoryview | int]] = []
    pos = 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_varint(buf, pos)
            out.append((number, wire, value))
        elif wire == 2:
            size, pos = _read_varint(buf, pos)
            if pos + size > len(buf):
                raise InvalidArgument("malformed protobuf message (a truncated field)")
            out.append((number, wire, buf[pos : pos + size]))
            pos += size
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise InvalidArgument(f"malformed protobuf message (wire type {wire})")
    return out


def parse_modify_file(data: bytes) -> pfs.ModifyFileRequest:
    """A ``ModifyFileRequest``: an ``add_file`` with raw bytes parsed here (its payload a
    ``memoryview`` of ``data``, not a copy), anything else by betterproto."""
    view = memoryview(data)
    top = _fields(view)
    if len(top) == 1 and top[0][0] == 2 and top[0][1] == 2:
        inner = top[0][2]
        assert isinstance(inner, memoryview)
        path = datum = ""
        raw: bytes | memoryview | None = None
        for number, wire, value in _fields(inner):
            if wire != 2:
                break
            assert isinstance(value, memoryview)
            if number == 1:
                path = value.tobytes().decode()
            elif number == 2:
                datum = value.tobytes().decode()
            elif number == 3:
                parts = [
                    v
                    for n, w, v in _fields(value)
                    if n == 1 and w == 2 and isinstance(v, memoryview)
                ]
                # the payload stays a view of the received message, not a copy (a field sent
                # twice: the last one counts, as protobuf has it)
                raw = parts[-1] if parts else b""
            else:
                break
        else:
            if raw is not None:
                return pfs.ModifyFileRequest(add_file=pfs.AddFile(path=path, datum=datum, raw=raw))
    return pfs.ModifyFileRequest().parse(data)
