"""Flow runs forked from a warm process.

Prefect's runner starts each flow run as `python -m prefect.engine`, a new interpreter that imports Prefect and the
flows again: about 3 s on a 2-core machine, most of the time from a drop to its run's Running state. `WarmRunner`
is that runner with one change: a run is a fork of a process that imported Prefect and the flows once (Python's
`forkserver`, started with the serving process), which then enters Prefect's engine for the run exactly as
`python -m prefect.engine` does. The run is still a process of its own, with its own pid (cancelling and crash
handling work as before), and the deployments are still served by `Runner`.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import os
import sys
from multiprocessing import forkserver
from multiprocessing.context import ForkServerContext
from typing import TYPE_CHECKING, Any
from uuid import UUID

import anyio
from prefect.runner import Runner

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun

# What the warm process imports once, so that a run forked from it imports nothing again.
PRELOAD = ["prefect.engine", "flows.service"]
_EXIT_POLL_S = 0.1

logger = logging.getLogger("medallion.service")


def warm_process() -> ForkServerContext:
    """The forkserver context, its process started now (its imports take the seconds a run would have waited)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    forkserver.ensure_running()
    return context


def run_flow_run(flow_run_id: str, environment: dict[str, str]) -> None:
    """In the forked process: the flow run through Prefect's engine, as `python -m prefect.engine` runs it."""
    from prefect.engine import enter_flow_run_engine_from_subprocess
    from prefect.exceptions import Abort, Pause
    from prefect.logging.loggers import get_logger

    os.environ.update(environment)
    engine_logger = get_logger("prefect.engine")
    code = 0
    try:
        enter_flow_run_engine_from_subprocess(UUID(flow_run_id))
    except (Abort, Pause) as stop:
        engine_logger.info("Engine execution of flow run '%s' stopped by the orchestrator: %s", flow_run_id, stop)
    except Exception:
        engine_logger.error("Engine execution of flow run '%s' exited with unexpected exception", flow_run_id)
        code = 1
    finally:
        # A forked process ends without the interpreter's exit handlers, which send the run's last logs and events.
        atexit._run_exitfuncs()
    sys.exit(code)


class WarmRunner(Runner):
    """Prefect's `Runner`, starting each flow run as a fork of the warm process."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._forks = warm_process()

    async def _run_process(
        self,
        flow_run: FlowRun,
        task_status: anyio.abc.TaskStatus[Any] | None = None,
        entrypoint: str | None = None,
    ) -> int:
        environment = {
            "PREFECT__FLOW_RUN_ID": str(flow_run.id),
            "PREFECT__STORAGE_BASE_PATH": str(self._tmp_dir),
            "PREFECT__ENABLE_CANCELLATION_AND_CRASHED_HOOKS": "false",
            **({"PREFECT__FLOW_ENTRYPOINT": entrypoint} if entrypoint else {}),
        }
        run_logger = self._get_flow_run_logger(flow_run)
        run_logger.info("Forking the warm process...")
        process = self._forks.Process(
            target=run_flow_run, args=(str(flow_run.id), environment), name=f"flow-run-{flow_run.id}"
        )
        process.start()
        if task_status is not None:
            task_status.started(process.pid)  # the pid the runner kills to cancel the run
        try:
            while process.exitcode is None:
                await anyio.sleep(_EXIT_POLL_S)
        except BaseException:
            # The runner is stopping under the run (the service was told to stop): the run goes with it.
            process.kill()
            raise
        code = int(process.exitcode)
        if code:
            run_logger.log(
                logging.INFO if code in (-9, -15) else logging.ERROR,
                "Process for flow run %r exited with status code: %s",
                flow_run.name,
                code,
            )
        else:
            run_logger.info("Process for flow run %r exited cleanly.", flow_run.name)
        return code
