"""The block-by-block table writers give the whole table's text, one final block per write."""

from __future__ import annotations

from tusk.cli.tables import Table, print_table, stream_lines, stream_table


def _rows(n: int) -> list[tuple[str, ...]]:
    # widths vary from row to row, so that each block's columns are sized on their own
    return [(f"id{i}", "x" * (i % 37), str(i * 7919 % 1000)) for i in range(n)]


def test_stream_table_writes_the_whole_table_block_by_block() -> None:
    for n in (0, 1, 48, 49, 50, 98, 99, 250):
        writes: list[str] = []
        stream_table(("ID", "NAME", "N"), iter(_rows(n)), writes.append)
        assert "".join(writes) == print_table(("ID", "NAME", "N"), _rows(n)), n
        # every write but the last is whole blocks of 50 lines (the header and 49 rows)
        assert all(w.count("\n") % 50 == 0 for w in writes[:-1]), n
        assert len(writes) == max(1, -(-n // 49)), n  # a block is written once the next row comes


def test_stream_lines_is_table_render_of_raw_lines() -> None:
    lines = [f"d{i}\t{'ok' if i % 3 else 'failed'}\t{i}s\n" for i in range(130)]
    table = Table(("ID", "STATUS", "TIME"))
    for line in lines:
        table.add_raw(line)
    writes: list[str] = []
    stream_lines(("ID", "STATUS", "TIME"), iter(lines), writes.append)
    assert "".join(writes) == table.render()
    assert len(writes) == 3
