"""The canonical columns and the header spellings of the retail layouts that map onto them."""

from __future__ import annotations

import re
from typing import NamedTuple

from medallion.errors import BadInputError

CANONICAL_COLUMNS: tuple[str, ...] = (
    "invoice_no",
    "stock_code",
    "description",
    "quantity",
    "invoice_date",
    "unit_price",
    "customer_id",
    "country",
)

# Header spellings seen in the wild, compared after lower-casing and dropping spaces, dots, dashes, underscores.
HEADER_ALIASES: dict[str, str] = {
    "invoiceno": "invoice_no",
    "invoice": "invoice_no",
    "invoicenumber": "invoice_no",
    "invoiceid": "invoice_no",
    "stockcode": "stock_code",
    "productcode": "stock_code",
    "sku": "stock_code",
    "description": "description",
    "productdescription": "description",
    "quantity": "quantity",
    "qty": "quantity",
    "invoicedate": "invoice_date",
    "invoicedatetime": "invoice_date",
    "unitprice": "unit_price",
    "price": "unit_price",
    "customerid": "customer_id",
    "customer": "customer_id",
    "customerno": "customer_id",
    "country": "country",
}
EXPECTED_HEADERS: dict[str, str] = {
    "invoice_no": "InvoiceNo or Invoice",
    "stock_code": "StockCode",
    "description": "Description",
    "quantity": "Quantity",
    "invoice_date": "InvoiceDate",
    "unit_price": "UnitPrice or Price",
    "customer_id": "CustomerID or Customer ID",
    "country": "Country",
}
INDEX_HEADERS = frozenset({"", "unnamed0", "index", "rowid", "row"})
_IGNORED_IN_NAMES = re.compile(r"[\s._\-]")


class ColumnMapping(NamedTuple):
    column_map: dict[str, str]
    index_column: str | None
    layout: str


def column_mapping(header: list[str], file_name: str) -> ColumnMapping:
    """Source header names mapped to canonical names; the leading unnamed column is the source index."""
    column_map: dict[str, str] = {}
    index_column: str | None = None
    for position, name in enumerate(header):
        key = _IGNORED_IN_NAMES.sub("", name.strip().lstrip("\ufeff")).lower()
        canonical = HEADER_ALIASES.get(key)
        if canonical is not None and canonical not in column_map.values():
            column_map[name] = canonical
        elif position == 0 and key in INDEX_HEADERS:
            index_column = name
    missing = [column for column in CANONICAL_COLUMNS if column not in column_map.values()]
    if missing:
        wanted = ", ".join(EXPECTED_HEADERS[column] for column in missing)
        found = ", ".join(repr(name) for name in header[:12]) or "nothing"
        raise BadInputError(f"{file_name}: missing column(s) {wanted}; the header has {found}")
    return ColumnMapping(column_map, index_column, _layout_of(column_map, index_column))


def _layout_of(column_map: dict[str, str], index_column: str | None) -> str:
    names = {_IGNORED_IN_NAMES.sub("", name).lower() for name in column_map}
    if "invoice" in names or "price" in names or "customer" in names:
        return "online_retail_ii"
    if {"invoiceno", "unitprice", "customerid"} <= names:
        return "uci_with_index" if index_column is not None else "uci"
    return "custom"
