"""A file of a batch run as one task: its layers, its move to processed or errors (with the sidecar), its artifacts.

A task costs Prefect a fixed fraction of a second, so a batch pays it once per file rather than once per layer; a
file's failure is its own outcome, never the batch's.
"""

from __future__ import annotations

import time
from pathlib import Path

from prefect import get_run_logger, task

from deployments import changes
from deployments.lifecycle import file_signature
from deployments.reporting import BatchFile
from flows.file_load import LAYER_STEPS, load_file_into
from medallion.errors import is_refusal
from medallion.names import printable
from medallion.runs import RunMode
from medallion.settings import Settings
from medallion.steps.run_step import failure_text
from medallion.warehouse import Warehouse
from tasks.service import errored_file, file_summary_artifact, processed_file


@task(name="load-file")
def batch_file(
    warehouse: Warehouse,
    path: str,
    settings: Settings,
    mode: RunMode,
    enable_external_enrichment: bool | None,
    batch_rows: int | None,
    attempt: int,
) -> BatchFile:
    """Load one file of the batch into the batch's open warehouse and file it away, with its summary artifact; a
    refusal or any other failure sends it to errors with its reason and is returned, so the batch goes on."""
    name = Path(path).name
    signature = file_signature(Path(path))
    started = time.monotonic()
    try:
        summary = load_file_into(
            warehouse,
            path,
            settings,
            mode=mode,
            enable_external_enrichment=enable_external_enrichment,
            batch_rows=batch_rows,
            layers=LAYER_STEPS,
        )
    except Exception as error:
        if not is_refusal(error):
            get_run_logger().exception("%s failed", printable(name))
        moved = errored_file.fn(path, error, attempt, settings, signature)
        return BatchFile(
            file_name=name,
            moved_to=moved,
            failure=failure_text(error),
            changed_tables=list(changes.failed_run_tables(error)),
        )
    destination = processed_file.fn(path, settings.pipeline, signature)
    file_summary_artifact(summary, destination, {"load": time.monotonic() - started})
    return BatchFile(
        file_name=name, moved_to=destination, summary=summary, changed_tables=list(changes.file_run_tables(summary))
    )
