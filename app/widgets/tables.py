"""Fill a DataTable with columns sized to their content, computed here, up front.

DataTable's automatic widths depend on when rows arrive relative to renders (the header can be
measured before the rows are), so the same rows could come out with different column widths.
Widths computed from the labels and cells themselves are the same every time, and never crop.
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.text import Text
from textual.widgets import DataTable


def _width(cell) -> int:
    return cell.cell_len if isinstance(cell, Text) else cell_len(str(cell))


def fill_table(table: DataTable, columns, rows, keys=None) -> None:
    """Replace the table's columns and rows; `keys` (optional) gives each row's key."""
    table.clear(columns=True)
    for i, label in enumerate(columns):
        width = max([_width(label)] + [_width(row[i]) for row in rows])
        table.add_column(label, width=width)
    for n, row in enumerate(rows):
        table.add_row(*row, key=None if keys is None else keys[n])
