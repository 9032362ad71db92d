"""Generate a retail file of N times the real data set's size from the shipped slice, in the slice's layout.

The slice is a sample of rows, so its invoices have one or two lines where the real set's have 21. Each copy of
the slice therefore merges runs of neighbouring slice invoices (in date order, cancellations apart) into one
invoice, which takes its first member's date, customer and country: every invoice has one date, one customer and
one country, and about as many lines as a real one. Each copy gets its own invoice numbers, shifted dates and
customers and products offset by a group number, and starts its runs at a different place, so distinct counts
grow with the size. Per multiple of the real set, invoices, customers and products land near the real set's
counts (25,900 / 4,372 / 4,070), and the dirt the slice over-represents (cancellations, bad-debt lines, exact
duplicates) is thinned back to the real set's share. Copies are generated and written in chunks, so memory stays
bounded whatever the size.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl

SLICE = Path(__file__).resolve().parent.parent / "data" / "sample" / "online_retail_sample.csv"

# Figures of the full UCI Online Retail set (541,909 rows), checked against the published data.
REAL_ROWS = 541_909
REAL_INVOICES = 25_900
REAL_CUSTOMERS = 4_372
REAL_PRODUCTS = 4_070
REAL_CANCELLATION_SHARE = 9_288 / REAL_ROWS
REAL_BAD_DEBT_SHARE = 3 / REAL_ROWS
REAL_DUPLICATE_SHARE = 5_268 / REAL_ROWS

YEARS_OF_HISTORY = 10
JITTER_DAYS = 32
COPIES_PER_CHUNK = 200
DATE_FORMAT = "%-m/%-d/%Y %-H:%M"
PARAMETERS = ("copy", "invoice_base", "run_shift", "customer_group", "product_group", "date_key")
FIRST_INVOICE = 536_365


@dataclass(frozen=True)
class SliceModel:
    """The slice parsed once, with everything a copy needs precomputed per row."""

    header: str
    rows: pl.DataFrame
    heads: pl.DataFrame
    date_table: pl.Series
    run_length: int
    invoices_per_copy: int
    customer_groups: int
    product_groups: int
    customer_stride: int
    product_stride: int
    cancellation_keep: float
    bad_debt_keep: float
    duplicate_keep: float
    copy_rows: float


def _stride(values: pl.Series) -> int:
    """A power of ten wider than the values' range, so offset groups never overlap."""
    low, high = int(values.min()), int(values.max())  # type: ignore[arg-type]
    return 10 ** len(str(high - low + 1))


def _quoted(column: str) -> pl.Expr:
    return (
        pl.when(pl.col(column).is_null())
        .then(pl.lit("NA"))
        .otherwise(pl.concat_str(pl.lit('"'), pl.col(column).str.replace_all('"', '""', literal=True), pl.lit('"')))
    )


def slice_model(path: Path = SLICE) -> SliceModel:
    """Parse the slice and derive group counts, id strides, dirt keep rates and the shifted-date table."""
    header = path.open(encoding="utf-8").readline().rstrip("\r\n")
    raw = pl.read_csv(path, infer_schema=False, null_values=["NA"])
    raw = raw.rename({raw.columns[0]: "index"})
    height = raw.height
    invoice = raw["InvoiceNo"].str.extract_groups(r"^([A-Za-z]?)(\d+)$")
    stock = raw["StockCode"].str.extract_groups(r"^(\d+)(.*)$")
    rows = pl.DataFrame(
        {
            "row": pl.int_range(0, height, eager=True, dtype=pl.Int64),
            "invoice_prefix": invoice.struct.field("1").fill_null(""),
            "invoice_number": invoice.struct.field("2").cast(pl.Int64),
            "stock_number": stock.struct.field("1").cast(pl.Int64),
            "stock_rest": stock.struct.field("2"),
            "stock_code": raw["StockCode"],
            "customer_number": raw["CustomerID"].cast(pl.Float64).cast(pl.Int64),
            "description_field": raw.select(_quoted("Description")).to_series(),
            "quantity_field": raw["Quantity"].fill_null("NA"),
            "price_field": raw["UnitPrice"].fill_null("NA"),
            "country_field": raw.select(_quoted("Country")).to_series(),
            "invoice_ts": raw["InvoiceDate"].str.to_datetime("%m/%d/%Y %H:%M"),
        }
    )
    if rows["invoice_number"].null_count() or rows["invoice_ts"].null_count():
        raise ValueError(f"{path.name}: every invoice number and date of the slice must parse")
    line = pl.struct(raw.columns[1:])
    rows = rows.with_columns(
        raw.with_row_index("row").select(pl.col("row").cast(pl.Int64).min().over(line)).to_series().alias("line_group"),
        raw.select(~line.is_first_distinct()).to_series().alias("is_extra_duplicate"),
        raw["InvoiceNo"].str.starts_with("C").alias("is_cancellation"),
        raw["InvoiceNo"].str.starts_with("A").alias("is_bad_debt"),
    )
    date_table = pl.concat(
        [
            rows.select(
                pl.col("invoice_ts").dt.offset_by(f"{year}y").dt.offset_by(f"{day}d").dt.strftime(DATE_FORMAT)
            ).to_series()
            for year in range(YEARS_OF_HISTORY)
            for day in range(JITTER_DAYS)
        ]
    )
    share = rows.select(
        pl.col("is_cancellation").mean(), pl.col("is_bad_debt").mean(), pl.col("is_extra_duplicate").mean()
    ).row(0)
    cancellation_keep = min(1.0, REAL_CANCELLATION_SHARE / share[0]) if share[0] else 1.0
    bad_debt_keep = min(1.0, REAL_BAD_DEBT_SHARE / share[1]) if share[1] else 1.0
    duplicate_keep = min(1.0, REAL_DUPLICATE_SHARE / share[2]) if share[2] else 1.0
    copy_rows = (
        height
        - (share[0] * (1 - cancellation_keep) + share[1] * (1 - bad_debt_keep) + share[2] * (1 - duplicate_keep))
        * height
    )
    # Slice invoices per generated invoice, so that a multiple of the real set holds about its invoice count.
    run_length = max(1, round(raw["InvoiceNo"].n_unique() * REAL_ROWS / (REAL_INVOICES * copy_rows)))
    rows, heads, invoices_per_copy = _invoice_runs(rows, run_length)
    return SliceModel(
        header=header,
        rows=rows.drop("invoice_ts"),
        heads=heads,
        date_table=date_table,
        run_length=run_length,
        invoices_per_copy=invoices_per_copy,
        customer_groups=max(1, round(REAL_CUSTOMERS / raw["CustomerID"].n_unique())),
        product_groups=max(1, round(REAL_PRODUCTS / raw["StockCode"].n_unique())),
        customer_stride=_stride(rows["customer_number"].drop_nulls()),
        product_stride=_stride(rows["stock_number"].drop_nulls()),
        cancellation_keep=cancellation_keep,
        bad_debt_keep=bad_debt_keep,
        duplicate_keep=duplicate_keep,
        copy_rows=copy_rows,
    )


def _invoice_runs(rows: pl.DataFrame, run_length: int) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """Each row's slice invoice ranked in date order among invoices of its kind (sale, cancellation or bad debt,
    with a customer or a guest's), the first row, customer and country of every slice invoice by (kind, rank), and
    an upper bound of the invoices one copy writes. Guests' invoices run only with guests' invoices, so the share
    of guest lines stays the slice's."""
    rows = rows.with_columns(
        pl.concat_str(
            pl.col("invoice_prefix"),
            pl.when(pl.col("customer_number").is_null().all().over("invoice_prefix", "invoice_number"))
            .then(pl.lit("guest"))
            .otherwise(pl.lit("")),
        ).alias("kind")
    )
    invoices = (
        rows.group_by("kind", "invoice_prefix", "invoice_number")
        .agg(
            pl.col("row").min().alias("head_row"),
            pl.col("invoice_ts").min().alias("first_ts"),
            pl.col("customer_number").sort_by("row").first().alias("head_customer"),
            pl.col("country_field").sort_by("row").first().alias("head_country"),
        )
        .sort("kind", "first_ts", "invoice_number")
        .with_columns(pl.int_range(0, pl.len(), dtype=pl.Int64).over("kind").alias("rank"))
    )
    kinds = invoices.group_by("kind").agg(pl.len().alias("count")).sort("kind")
    # Runs of one kind never share a number with another kind's: each kind counts from its own offset.
    runs_per_kind = [count // run_length + 2 for count in kinds["count"]]
    offsets = dict(zip(kinds["kind"], [sum(runs_per_kind[:i]) for i in range(len(runs_per_kind))], strict=True))
    invoices = invoices.with_columns(pl.col("kind").replace_strict(offsets, return_dtype=pl.Int64).alias("kind_offset"))
    rows = rows.join(
        invoices.select("invoice_prefix", "invoice_number", "rank", "kind_offset"),
        on=["invoice_prefix", "invoice_number"],
        maintain_order="left",
    )
    heads = invoices.select("kind", "rank", "head_row", "head_customer", "head_country")
    return rows, heads, sum(runs_per_kind)


@dataclass(frozen=True)
class Copy:
    number: int
    multiple: int
    position: int


def _dropped_rows(model: SliceModel, copies: list[Copy], generator: random.Random) -> pl.DataFrame:
    """(copy, row) pairs thinned away so cancellations, bad debt and duplicates keep the real set's share."""
    flags = ("is_cancellation", "is_bad_debt", "is_extra_duplicate")
    records = model.rows.filter(pl.any_horizontal(flags)).select("row", "line_group", *flags).rows()
    dropped_copy: list[int] = []
    dropped_row: list[int] = []
    for copy in copies:
        group_kept: dict[int, bool] = {}
        for row, group, cancellation, bad_debt, extra in records:
            if group not in group_kept:
                keep = model.bad_debt_keep if bad_debt else model.cancellation_keep if cancellation else 1.0
                group_kept[group] = generator.random() < keep
            kept = group_kept[group] and (not extra or generator.random() < model.duplicate_keep)
            if not kept:
                dropped_copy.append(copy.number)
                dropped_row.append(row)
    schema = dict.fromkeys(("copy", "row"), pl.Int64)
    return pl.DataFrame({"copy": dropped_copy, "row": dropped_row}, schema=schema)


def _chunk_lines(model: SliceModel, copies: list[Copy], generator: random.Random) -> pl.DataFrame:
    """The CSV lines of a run of copies, without the running index, in copy then slice order."""
    customers, products, run = model.customer_groups, model.product_groups, model.run_length
    params = pl.DataFrame(
        {
            "copy": [copy.number for copy in copies],
            "invoice_base": [FIRST_INVOICE + copy.number * model.invoices_per_copy for copy in copies],
            "run_shift": [copy.position % run for copy in copies],
            "customer_group": [copy.multiple * customers + copy.position % customers for copy in copies],
            "product_group": [copy.multiple * products + copy.position % products for copy in copies],
            # The day moves on once per round of run shifts, so two copies with the same runs (and customers) get
            # the same day only every JITTER_DAYS * run copies, not every JITTER_DAYS: no invoice comes out twice.
            "date_key": [
                (copy.multiple % YEARS_OF_HISTORY) * JITTER_DAYS + (copy.position + copy.position // run) % JITTER_DAYS
                for copy in copies
            ],
        },
        schema=dict.fromkeys(PARAMETERS, pl.Int64),
    )
    height = model.rows.height
    # A copy's runs start `run_shift` invoices in: run k holds ranks [k * run - shift, (k + 1) * run - shift).
    run_index = (pl.col("rank") + pl.col("run_shift")) // run
    frame = (
        params.join(model.rows, how="cross")
        .join(_dropped_rows(model, copies, generator), on=["copy", "row"], how="anti", maintain_order="left")
        .with_columns(
            run_index.alias("run_index"),
            pl.max_horizontal(run_index * run - pl.col("run_shift"), pl.lit(0)).alias("head_rank"),
        )
        .join(
            model.heads,
            left_on=["kind", "head_rank"],
            right_on=["kind", "rank"],
            maintain_order="left",
        )
    )
    dates = model.date_table.gather(frame.select(pl.col("date_key") * height + pl.col("head_row")).to_series())
    invoice = pl.concat_str(
        pl.col("invoice_prefix"),
        (pl.col("invoice_base") + pl.col("kind_offset") + pl.col("run_index")).cast(pl.String),
    )
    stock = (
        pl.when(pl.col("stock_number").is_null())
        .then(pl.col("stock_code"))
        .otherwise(
            pl.concat_str(
                (pl.col("stock_number") + pl.col("product_group") * model.product_stride).cast(pl.String),
                pl.col("stock_rest"),
            )
        )
    )
    customer = (pl.col("head_customer") + pl.col("customer_group") * model.customer_stride).cast(pl.String)
    lines = frame.with_columns(dates.alias("date")).select(
        "line_group",
        pl.concat_str(
            pl.lit('","'),
            invoice,
            pl.lit('","'),
            stock,
            pl.lit('",'),
            pl.col("description_field"),
            pl.lit(","),
            pl.col("quantity_field"),
            pl.lit(',"'),
            pl.col("date"),
            pl.lit('",'),
            pl.col("price_field"),
            pl.lit(","),
            customer.fill_null("NA"),
            pl.lit(","),
            pl.col("head_country"),
        ).alias("tail"),
    )
    # Lines of different slice invoices can meet in one run and come out equal; only the slice's own exact
    # duplicates (rows of one line group) stay, so the duplicate share stays the thinned one.
    return lines.filter(pl.col("line_group") == pl.col("line_group").first().over("tail")).select("tail")


def generate(target: Path, multiple: float, *, seed: int = 352, model: SliceModel | None = None) -> int:
    """Write `multiple` times the real set's rows to `target`, through a temporary name; return the rows."""
    model = model or slice_model()
    total_rows = round(multiple * REAL_ROWS)
    if total_rows <= 0:
        raise ValueError("the multiple must give at least one row")
    generator = random.Random(seed)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.tmp")
    written = 0
    copy_number = 0
    multiple_now = 0
    position = 0
    with temporary.open("wb") as sink:
        sink.write((model.header + "\n").encode("utf-8"))
        while written < total_rows:
            copies = []
            expected: float = written
            for _ in range(COPIES_PER_CHUNK):
                multiple_of_copy = int(expected // REAL_ROWS)
                if multiple_of_copy != multiple_now:
                    multiple_now, position = multiple_of_copy, 0
                copies.append(Copy(number=copy_number, multiple=multiple_now, position=position))
                copy_number += 1
                position += 1
                expected += model.copy_rows
                if expected >= total_rows:
                    break
            lines = _chunk_lines(model, copies, generator).head(total_rows - written)
            lines.select(
                pl.concat_str(
                    pl.lit('"'),
                    pl.int_range(written + 1, written + lines.height + 1, dtype=pl.Int64).cast(pl.String),
                    pl.col("tail"),
                )
            ).write_csv(sink, include_header=False, quote_style="never")
            written += lines.height
    temporary.replace(target)
    return written


def size_label(multiple: float) -> str:
    return f"{multiple:g}x"


def default_path(multiple: float, directory: Path) -> Path:
    return directory / f"online_retail_{size_label(multiple)}.csv"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("multiples", nargs="+", type=float, help="multiples of the real set, e.g. 1 10 100")
    parser.add_argument("--out-dir", type=Path, default=Path("data/bench"))
    parser.add_argument("--seed", type=int, default=352)
    arguments = parser.parse_args()
    model = slice_model()
    for multiple in arguments.multiples:
        target = default_path(multiple, arguments.out_dir)
        started = time.perf_counter()
        rows = generate(target, multiple, seed=arguments.seed, model=model)
        elapsed = time.perf_counter() - started
        size_mb = target.stat().st_size / 1e6
        print(f"{target}: {rows:,} rows, {size_mb:,.0f} MB in {elapsed:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
