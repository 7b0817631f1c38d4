"""Pachyderm 1.7's own examples (doc/examples of the 1.7 line), run verbatim on a real server.

The pipeline specs below are the examples' specs exactly as Pachyderm 1.7 ships them; the data is
written by the tests (nothing is downloaded). Their images (`ubuntu:16.04`, the default of a spec
that names none; `ubuntu`; `pachyderm/opencv`) are built by scripts/build-images.sh.
"""

from __future__ import annotations

import random
import shutil
import struct
import subprocess
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tusk.testing import Tuskd

from .test_workshop import Pachctl, progress

IMAGES = ("ubuntu:16.04", "ubuntu:latest", "pachyderm/opencv:latest")

# doc/examples/fruit_stand/pipeline.json (two specs, one after the other, as in the file).
FRUIT_STAND = r"""
{
  "pipeline": {
    "name": "filter"
  },
  "transform": {
    "cmd": [ "sh" ],
    "stdin": [
        "for fruit in apple orange banana; do",
        "   grep -h $fruit /pfs/data/* | awk '{print $2}' >>/pfs/out/$fruit",
        "done"
    ]
  },
  "parallelism_spec": {
    "constant": 1
  },
  "input": {
    "atom": {
      "repo": "data",
      "glob": "/*"
    }
  }
}
{
  "pipeline": {
    "name": "sum"
  },
  "transform": {
    "cmd": [ "sh" ],
    "stdin": [
        "for fruit in apple orange banana; do",
        "   [ -e /pfs/filter/$fruit ] || continue",
        "   cat /pfs/filter/$fruit | awk '{s+=$1} END {print s}' >/pfs/out/$fruit",
        "done"
    ]
  },
  "parallelism_spec": {
    "constant": 1
  },
  "input": {
    "atom": {
      "repo": "filter",
      "glob": "/*"
    }
  }
}
"""

# doc/examples/shuffle/shuffle.json
SHUFFLE = r"""
{
  "input": {
    "union": [
      {
        "atom": {
          "glob": "/*.jpeg",
          "repo": "fruits",
          "empty_files": true
        }
      },
      {
        "atom": {
          "glob": "/*.json",
          "repo": "pricing",
          "empty_files": true
        }
      }
    ]
  },
  "pipeline": {
    "name": "shuffle"
  },
  "transform": {
    "image": "ubuntu",
    "cmd": ["/bin/bash"],
    "stdin": [
      "echo 'process fruits if any'",
      "fn=$(find  -L /pfs -not -path \"*/\\.*\"  -type f \\( -path '*/fruits/*' \\))",
      "for f in $fn; do fruit_name=$(basename $f .jpeg); mkdir -p /pfs/out/$fruit_name/; ln -s $f /pfs/out/$fruit_name/img.jpeg; done",
      "echo 'process pricing if any'",
      "fn=$(find  -L /pfs -not -path \"*/\\.*\"  -type f \\( -path '*/pricing/*' \\))",
      "for f in $fn; do fruit_name=$(basename $f .json); mkdir -p /pfs/out/$fruit_name/; ln -s $f /pfs/out/$fruit_name/cost.json; done"
    ]
  }
}
"""

# doc/examples/opencv/edges.json
EDGES = r"""
{
  "pipeline": {
    "name": "edges"
  },
  "input": {
    "atom": {
      "glob": "/*",
      "repo": "images"
    }
  },
  "transform": {
    "cmd": [ "python3", "/edges.py" ],
    "image": "pachyderm/opencv"
  }
}
"""


def _missing_images() -> list[str]:
    podman = shutil.which("podman")
    assert podman, "podman is not installed: run scripts/setup.sh (it says what to install)"
    return [
        name
        for name in IMAGES
        if subprocess.run([podman, "image", "exists", name], check=False).returncode != 0
    ]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tuskd]:
    missing = _missing_images()
    assert not missing, f"images {missing} are not built: run scripts/build-images.sh"
    home = tmp_path_factory.mktemp("examples-home")
    with Tuskd(home) as tuskd:
        yield tuskd


@pytest.fixture
def p(server: Tuskd, tmp_path: Path) -> Iterator[Pachctl]:
    pachctl = Pachctl(server.env, tmp_path)
    yield pachctl
    pachctl("delete-pipeline", "--all", "--force")
    pachctl("delete-repo", "--all", "--force")


def _job(p: Pachctl, pipeline: str) -> dict:
    return p.jobs(pipeline)[0]


# -- fruit_stand ---------------------------------------------------------------------------------
def _sales(seed: int, lines: int = 100) -> tuple[str, dict[str, int]]:
    """A fruit stand's sales log as in set1.txt/set2.txt: "<fruit>\\t<count>" lines."""
    rng = random.Random(seed)
    totals = {"apple": 0, "orange": 0, "banana": 0}
    out = []
    for _ in range(lines):
        fruit, count = rng.choice(sorted(totals)), rng.randint(1, 9)
        totals[fruit] += count
        out.append(f"{fruit}\t{count}\n")
    return "".join(out), totals


def test_fruit_stand(p: Pachctl) -> None:
    (p.cwd / "pipeline.json").write_text(FRUIT_STAND)
    set1, totals1 = _sales(1)
    set2, totals2 = _sales(2)
    (p.cwd / "set1.txt").write_text(set1)
    (p.cwd / "set2.txt").write_text(set2)

    p("create-repo", "data")
    p("put-file", "data", "master", "/sales", "-f", "set1.txt")
    p("create-pipeline", "-f", "pipeline.json")
    p.settle(timeout=300)
    assert [progress(_job(p, "filter")), _job(p, "filter")["state"]] == ["1 + 0 / 1", "success"]
    assert [progress(_job(p, "sum")), _job(p, "sum")["state"]] == ["3 + 0 / 3", "success"]
    # The filter keeps each fruit's counts, one a line, in the order of the log.
    apples = [line.split("\t")[1] for line in set1.splitlines() if line.startswith("apple")]
    assert p("get-file", "filter", "master", "/apple") == "".join(f"{n}\n" for n in apples)
    for fruit, total in totals1.items():
        assert p("get-file", "sum", "master", f"/{fruit}") == f"{total}\n"

    # More sales appended to the same file: the sums are the running totals.
    p("put-file", "data", "master", "sales", "-f", "set2.txt")
    p.settle(timeout=300)
    assert len(p.jobs("sum")) == 2 and progress(_job(p, "sum")) == "3 + 0 / 3"
    assert p("get-file", "data", "master", "/sales") == set1 + set2
    for fruit in totals1:
        assert p("get-file", "sum", "master", f"/{fruit}") == f"{totals1[fruit] + totals2[fruit]}\n"


# -- shuffle -------------------------------------------------------------------------------------
def test_shuffle(p: Pachctl) -> None:
    (p.cwd / "shuffle.json").write_text(SHUFFLE)
    rng = random.Random(7)
    files = {
        "mango.jpeg": b"\xff\xd8\xff\xe0" + rng.randbytes(7194),
        "apple.jpeg": b"\xff\xd8\xff\xe0" + rng.randbytes(5094),
        "mango.json": b'{\n  "price_usd": 10\n}\n',
        "apple.json": b'{\n  "price_usd": 100\n}\n',
    }
    for name, data in files.items():
        (p.cwd / name).write_bytes(data)
    p("create-repo", "fruits")
    p("put-file", "fruits", "master", "-f", "mango.jpeg")
    p("put-file", "fruits", "master", "-f", "apple.jpeg")
    p("create-repo", "pricing")
    p("put-file", "pricing", "master", "-f", "mango.json")
    p("put-file", "pricing", "master", "-f", "apple.json")
    p("create-pipeline", "-f", "shuffle.json")
    p.settle(timeout=300)

    job = _job(p, "shuffle")
    assert job["state"] == "success", job.get("reason")
    assert progress(job) == "4 + 0 / 4"
    assert job["bytes_down"] == 0  # empty_files: names only, no content downloaded
    listing = {f["path"]: f["size_bytes"] for f in p.raw("list-file", "shuffle", "master", "/*/*")}
    assert listing == {
        "/mango/cost.json": 22,
        "/mango/img.jpeg": len(files["mango.jpeg"]),
        "/apple/cost.json": 23,
        "/apple/img.jpeg": len(files["apple.jpeg"]),
    }
    # The links to the inputs become the inputs' content.
    assert p("get-file", "shuffle", "master", "/apple/cost.json") == files["apple.json"].decode()


# -- opencv --------------------------------------------------------------------------------------
def _png_chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


def _write_png(path: Path, width: int, height: int, box: tuple[int, int, int, int]) -> None:
    """An RGB picture: a white box (left, top, right, bottom; exclusive) on dark blue."""
    left, top, right, bottom = box
    rows = []
    for y in range(height):
        row = bytearray(b"\x00")  # filter: none
        for x in range(width):
            inside = left <= x < right and top <= y < bottom
            row += b"\xff\xff\xff" if inside else b"\x10\x20\x60"
        rows.append(bytes(row))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + _png_chunk(b"IEND", b"")
    )


def _read_gray_png(data: bytes) -> list[bytes]:
    """The rows of an 8-bit grayscale PNG (what cv2.imwrite makes of an edge map)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert (depth, color, interlace) == (8, 0, 0), "expected 8-bit grayscale, not interlaced"
    raw = zlib.decompress(idat)
    rows: list[bytes] = []
    prev = bytes(width)
    for y in range(height):
        kind, line = (
            raw[y * (width + 1)],
            bytearray(raw[y * (width + 1) + 1 : (y + 1) * (width + 1)]),
        )
        for x in range(width):
            a = line[x - 1] if x else 0
            b, c = prev[x], (prev[x - 1] if x else 0)
            if kind == 1:
                line[x] = (line[x] + a) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + b) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (a + b) // 2) & 0xFF
            elif kind == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[x] = (line[x] + pred) & 0xFF
        rows.append(bytes(line))
        prev = rows[-1]
    return rows


def test_opencv_edges(p: Pachctl) -> None:
    (p.cwd / "edges.json").write_text(EDGES)
    pictures = {
        "liberty.png": (80, 60, (20, 15, 60, 45)),
        "AT-AT.png": (64, 64, (8, 8, 40, 56)),
        "kitten.png": (50, 40, (10, 10, 30, 30)),
    }
    for name, (w, h, box) in pictures.items():
        _write_png(p.cwd / name, w, h, box)

    p("create-repo", "images")
    p("put-file", "images", "master", "liberty.png", "-f", "liberty.png")
    p("create-pipeline", "-f", "edges.json")
    p.settle(timeout=600)
    # As in the tutorial: each new image is one new datum; the earlier ones are skipped.
    assert [progress(_job(p, "edges")), _job(p, "edges")["state"]] == ["1 + 0 / 1", "success"]
    p("put-file", "images", "master", "AT-AT.png", "-f", "AT-AT.png")
    p.settle(timeout=300)
    assert [progress(_job(p, "edges")), _job(p, "edges")["state"]] == ["1 + 1 / 2", "success"]
    p("put-file", "images", "master", "kitten.png", "-f", "kitten.png")
    p.settle(timeout=300)
    assert [progress(_job(p, "edges")), _job(p, "edges")["state"]] == ["1 + 2 / 3", "success"]
    assert len(p.jobs("edges")) == 3

    names = sorted(f["path"] for f in p.raw("list-file", "edges", "master"))
    assert names == ["/AT-AT.png", "/kitten.png", "/liberty.png"]
    for name, (w, h, (left, top, right, bottom)) in pictures.items():
        rows = _read_gray_png(p.binary("get-file", "edges", "master", name))
        assert (len(rows[0]), len(rows)) == (w, h)
        assert {v for row in rows for v in row} == {0, 255}  # a black and white edge map
        mid_y, mid_x = (top + bottom) // 2, (left + right) // 2
        assert rows[mid_y][mid_x] == 0 and rows[2][2] == 0  # inside and outside the box: flat
        # The box's left and right sides are edges (Canny marks one of the two pixels).
        assert max(rows[mid_y][left - 1 : left + 1]) == 255
        assert max(rows[mid_y][right - 1 : right + 1]) == 255
        assert max(rows[top - 1][mid_x], rows[top][mid_x]) == 255
