"""pachctl 1.7's tables: Go's ``text/tabwriter`` and the header-repeating writer of every list.

* ``TabWriter``         -- Go ``text/tabwriter`` (cells are tab-*terminated*).
* ``HeaderTabWriter``   -- pachyderm ``src/server/pkg/tabwriter``: a tabwriter(0, 1, 1, ' ', 0)
  that flushes and re-prints the header every 50 lines (header line included).
* ``Table`` / ``print_table`` -- convenience wrappers for the usual header + rows tables.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import TextIO

_BREAKS = re.compile("[\t\v\n\f]")


class _Cell:
    __slots__ = ("htab", "text")

    def __init__(self, text: str, htab: bool) -> None:
        self.text = text
        self.htab = htab  # terminated by '\t' (vs '\v' or end of line)

    @property
    def width(self) -> int:
        # Go counts runes (utf8.RuneCount); len() of a str counts code points.
        return len(self.text)


class TabWriter:
    """Go ``text/tabwriter.Writer`` (no Debug/FilterHTML/TabIndent/escape support).

    Text is split into cells by ``\\t`` / ``\\v``; a cell is part of a column only if it is
    *terminated* by a tab, so the last (unterminated) cell of a line is never padded. Columns are
    formatted per block of consecutive lines that have that column. ``\\f`` forces a flush, and a
    line with a single cell flushes too (as in Go). ``write`` returns nothing; formatted text is
    collected and handed back by ``flush``.
    """

    def __init__(
        self,
        minwidth: int = 0,
        tabwidth: int = 1,
        padding: int = 1,
        padchar: str = " ",
        *,
        align_right: bool = False,
        discard_empty_columns: bool = False,
    ) -> None:
        self.minwidth = minwidth
        self.tabwidth = tabwidth
        self.padding = padding
        self.padchar = padchar
        self.align_right = align_right
        self.discard_empty_columns = discard_empty_columns
        self._out: list[str] = []
        self._reset()

    def _reset(self) -> None:
        self._lines: list[list[_Cell]] = [[]]
        self._cell: list[str] = []
        self._widths: list[int] = []

    def _terminate_cell(self, htab: bool) -> int:
        line = self._lines[-1]
        line.append(_Cell("".join(self._cell), htab))
        self._cell = []
        return len(line)

    def write(self, text: str) -> None:
        start = 0
        for m in _BREAKS.finditer(text):  # only the separators: the cells' text is not walked
            i = m.start()
            ch = text[i]
            self._cell.append(text[start:i])
            start = i + 1
            ncells = self._terminate_cell(ch == "\t")
            if ch in "\n\f":
                self._lines.append([])
                if ch == "\f" or ncells == 1:
                    self._flush_internal()
        self._cell.append(text[start:])

    def _flush_internal(self) -> None:
        if any(self._cell):
            self._terminate_cell(False)
        self._format(0, len(self._lines))
        self._reset()

    def flush(self) -> str:
        """Format everything buffered; return all output produced since the last ``flush``."""
        self._flush_internal()
        out = "".join(self._out)
        self._out = []
        return out

    # -- formatting (direct port of tabwriter.format / writeLines / writePadding) --

    def _write_padding(self, textw: int, cellw: int) -> None:
        if self.padchar == "\t":
            if self.tabwidth == 0:
                return
            cellw = (cellw + self.tabwidth - 1) // self.tabwidth * self.tabwidth
            n = cellw - textw
            self._out.append("\t" * ((n + self.tabwidth - 1) // self.tabwidth))
            return
        self._out.append(self.padchar * (cellw - textw))

    def _write_lines(self, line0: int, line1: int) -> None:
        widths = self._widths
        for i in range(line0, line1):
            line = self._lines[i]
            for j, c in enumerate(line):
                if not c.text:
                    if j < len(widths):
                        self._write_padding(c.width, widths[j])
                elif not self.align_right:
                    self._out.append(c.text)
                    if j < len(widths):
                        self._write_padding(c.width, widths[j])
                else:
                    if j < len(widths):
                        self._write_padding(c.width, widths[j])
                    self._out.append(c.text)
            if i + 1 == len(self._lines):
                # last buffered line: no newline, just any outstanding partial cell
                self._out.append("".join(self._cell))
            else:
                self._out.append("\n")

    def _format(self, line0: int, line1: int) -> None:
        column = len(self._widths)
        this = line0
        while this < line1:
            line = self._lines[this]
            if column >= len(line) - 1:
                this += 1
                continue
            # print unprinted lines until beginning of block
            self._write_lines(line0, this)
            line0 = this
            # column block
            width = self.minwidth
            discardable = True
            while this < line1:
                line = self._lines[this]
                if column >= len(line) - 1:
                    break
                c = line[column]
                w = c.width + self.padding
                if w > width:
                    width = w
                if c.width > 0 or c.htab:
                    discardable = False
                this += 1
            if discardable and self.discard_empty_columns:
                width = 0
            self._widths.append(width)
            self._format(line0, this)
            self._widths.pop()
            line0 = this
        self._write_lines(line0, line1)


class HeaderTabWriter:
    """pachyderm ``src/server/pkg/tabwriter.Writer`` (used by every 1.7 list command).

    A ``TabWriter(0, 1, 1, ' ')`` that starts with ``header`` and, once ``term_height`` lines
    (header included) have been written, flushes and re-prints the header before the next write.
    So each block is the header plus ``term_height - 1`` rows, and column widths are computed
    per block. ``term_height=None`` (or 0) disables the re-printing (one block).
    """

    def __init__(self, header: str, term_height: int | None = 50) -> None:
        if not header.endswith("\n"):
            raise ValueError("header must end in a new line")
        self._tw = TabWriter(0, 1, 1, " ")
        self._header = header
        self._term_height = term_height
        self._out: list[str] = []
        self._tw.write(header)
        self._lines = 1

    def write(self, text: str) -> None:
        if self._term_height and self._lines >= self._term_height:
            self._flush_block()
            self._tw.write(self._header)
            self._lines += 1
        self._lines += text.count("\n")
        self._tw.write(text)

    def _flush_block(self) -> None:
        self._lines = 0
        self._out.append(self._tw.flush())

    def take(self) -> str:
        """The text of the blocks completed so far (the open block stays buffered)."""
        out = "".join(self._out)
        self._out = []
        return out

    def flush(self) -> str:
        """Flush the tabwriter; return all text produced since the previous ``flush``."""
        self._flush_block()
        out = "".join(self._out)
        self._out = []
        return out


def _row_line(cells: Iterable[str]) -> str:
    return "".join(f"{c}\t" for c in cells) + "\n"


class Table:
    """Header + rows rendered like pachctl: every cell (the last too) is tab-terminated.

    ``add(row)`` writes ``"c1\\tc2\\t...\\tcN\\t\\n"`` (the Go ``Fprintf(w, "%s\\t", ...)`` pattern),
    so every column, including the last, is padded to its widest cell + 1 and lines carry
    trailing spaces. ``add_raw(text)`` writes text verbatim for layouts that don't follow that
    pattern (e.g. 1.7's datum rows ``"%s\\t%s\\t%s\\n"``). The header is re-printed every
    ``page_lines`` lines (header included) when ``repeat_header`` is set, as pachctl does.
    """

    def __init__(
        self, headers: Sequence[str], *, repeat_header: bool = True, page_lines: int = 50
    ) -> None:
        self.headers = list(headers)
        self.repeat_header = repeat_header
        self.page_lines = page_lines
        self._chunks: list[str] = []

    @property
    def header_line(self) -> str:
        return _row_line(self.headers)

    def add(self, row: Sequence[str]) -> None:
        self._chunks.append(_row_line(str(c) for c in row))

    def add_raw(self, text: str) -> None:
        self._chunks.append(text)

    def render(self) -> str:
        w = HeaderTabWriter(self.header_line, self.page_lines if self.repeat_header else None)
        for chunk in self._chunks:
            w.write(chunk)
        return w.flush()


def print_table(
    headers: Sequence[str],
    rows: Iterable[Sequence[str]],
    file: TextIO | None = None,
    *,
    repeat_header: bool = True,
    page_lines: int = 50,
) -> str:
    """Render ``headers`` + ``rows`` as a pachctl table, write it to ``file`` (if given), return it."""
    table = Table(headers, repeat_header=repeat_header, page_lines=page_lines)
    for row in rows:
        table.add(row)
    text = table.render()
    if file is not None:
        file.write(text)
    return text


def stream_table(
    headers: Sequence[str],
    rows: Iterable[Sequence[str]],
    write: Callable[[str], object],
    *,
    page_lines: int = 50,
) -> None:
    """:func:`print_table`'s text, handed to ``write`` block by block as ``rows`` come.

    pachctl's writer sizes the columns of each block (the header and ``page_lines - 1`` rows)
    on its own and re-prints the header after it, so a block is final once its last row is in:
    memory stays one block, and the text is byte for byte :func:`print_table`'s."""
    stream_lines(headers, (_row_line(row) for row in rows), write, page_lines=page_lines)


def stream_lines(
    headers: Sequence[str],
    lines: Iterable[str],
    write: Callable[[str], object],
    *,
    page_lines: int = 50,
) -> None:
    """:func:`stream_table` for rows already written as lines (``Table.add_raw``'s layouts,
    e.g. 1.7's datum rows whose last cell has no tab): ``Table.render``'s text, block by block."""
    w = HeaderTabWriter(_row_line(headers), page_lines)
    for line in lines:
        w.write(line)
        if done := w.take():
            write(done)
    write(w.flush())


def fixed_line(cells: Sequence[str], widths: Sequence[int]) -> str:
    """One line of a table printed row by row as rows arrive (``subscribe-commit``): every cell
    padded to its column's fixed width (at least one space after it), so rows printed later line
    up with the header printed first."""
    return (
        "".join(c.ljust(w) if len(c) < w else c + " " for c, w in zip(cells, widths, strict=True))
        + "\n"
    )
