"""Build data/sample/online_retail_sample.csv from the full UCI set: a seeded slice that covers the data's dirt.

Run once by a maintainer with the full data set at hand; the project ships the output, never the input.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import polars as pl

LAYOUT = [
    "InvoiceNo",
    "StockCode",
    "Description",
    "Quantity",
    "InvoiceDate",
    "UnitPrice",
    "CustomerID",
    "Country",
]


def sample_slice(full: pl.DataFrame, downloaded: pl.DataFrame, seed: int = 352) -> pl.DataFrame:
    """The downloaded sample's rows plus rows chosen so every kind of dirt in the full set is present."""
    indexed = full.with_row_index("index", offset=1).with_columns(pl.col("index").cast(pl.Int64))
    taken = set(downloaded[""].cast(pl.Int64).to_list())
    duplicated = indexed.filter(pl.struct(LAYOUT).is_duplicated())
    pairs = duplicated.filter(
        pl.col("InvoiceNo").is_in(duplicated["InvoiceNo"].unique().sample(40, seed=seed).implode())
    )
    picks = [
        indexed.filter(pl.col("InvoiceNo").str.starts_with("A")),
        indexed.filter(
            pl.col("Country").is_in(
                [
                    "RSA",
                    "USA",
                    "Channel Islands",
                    "European Community",
                    "Unspecified",
                    "Brazil",
                    "Lebanon",
                    "Saudi Arabia",
                    "Bahrain",
                    "Czech Republic",
                ]
            )
        ).sample(120, seed=seed),
        indexed.filter(
            pl.col("StockCode").is_in(["POST", "DOT", "M", "D", "C2", "BANK CHARGES", "AMAZONFEE", "CRUK"])
        ).sample(80, seed=seed),
        indexed.filter(pl.col("UnitPrice") == 0).sample(30, seed=seed),
        indexed.filter(pl.col("Description") == "nan").sample(20, seed=seed),
        indexed.filter(pl.col("InvoiceNo").str.starts_with("C")).sample(100, seed=seed),
        pairs,
        indexed.sample(1800, seed=seed),
    ]
    extra = pl.concat(picks).unique("index").filter(~pl.col("index").is_in(pl.Series(sorted(taken)).implode()))
    rows = pl.concat(
        [
            downloaded.select(pl.col("").cast(pl.Int64).alias("index"), *LAYOUT),
            extra.select(
                "index",
                "InvoiceNo",
                "StockCode",
                pl.when(pl.col("Description") == "nan")
                .then(None)
                .otherwise(pl.col("Description"))
                .alias("Description"),
                pl.col("Quantity").cast(pl.String),
                pl.col("InvoiceDate").dt.strftime("%-m/%-d/%Y %-H:%M").alias("InvoiceDate"),
                pl.col("UnitPrice").map_elements(
                    lambda v: repr(float(v)).removesuffix(".0") if float(v).is_integer() else repr(float(v)),
                    return_dtype=pl.String,
                ),
                pl.col("CustomerID").cast(pl.Int64).cast(pl.String),
                "Country",
            ),
        ]
    )
    return rows.sort("index")


def write_downloaded_layout(rows: pl.DataFrame, target: Path) -> None:
    """Write rows the way the public download does: quoted text, bare numbers, NA for missing values."""

    def quoted(value: object) -> str:
        return "NA" if value is None else '"' + str(value).replace('"', '""') + '"'

    def bare(value: object) -> str:
        return "NA" if value is None else str(value)

    lines = ['"",' + ",".join(f'"{name}"' for name in LAYOUT)]
    for row in rows.iter_rows(named=True):
        lines.append(
            ",".join(
                [
                    quoted(row["index"]),
                    quoted(row["InvoiceNo"]),
                    quoted(row["StockCode"]),
                    quoted(row["Description"]),
                    bare(row["Quantity"]),
                    quoted(row["InvoiceDate"]),
                    bare(row["UnitPrice"]),
                    bare(row["CustomerID"]),
                    quoted(row["Country"]),
                ]
            )
        )
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full", type=Path, default=Path("../shared/data/online_retail_uci.parquet"))
    parser.add_argument(
        "--downloaded", type=Path, default=Path("../shared/data/online_retail_sample_original_layout.csv")
    )
    parser.add_argument("--out", type=Path, default=Path("data/sample/online_retail_sample.csv"))
    arguments = parser.parse_args()
    full = pl.read_parquet(arguments.full)
    downloaded = pl.read_csv(arguments.downloaded, infer_schema=False, null_values=["NA"])
    write_downloaded_layout(sample_slice(full, downloaded), arguments.out)


if __name__ == "__main__":
    main()
