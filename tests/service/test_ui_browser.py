"""The Prefect UI of a running service in a real browser (Debian's headless Chromium): after a good, a low-quality and
an empty file, the runs list shows which went wrong and how, the Artifacts page the warehouse's state and the
watcher's heartbeat, and the artifacts their charts and lineage as images. The screenshots it takes are kept in
the test's folder, or in $UI_SCREENSHOTS when set (`make screenshots` sets it to docs/screenshots/ for the README).

The UI is a JavaScript app: Chromium renders it for `--virtual-time-budget` of virtual time, then dumps the DOM and
takes the screenshot at that same moment. A page caught before its data arrived, or dimmed in its fade-in, is loaded
again.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from .conftest import Service, csv_text, uci_rows, wait_until
from .test_service_files import drop, latest_artifacts

CHROMIUM = Path("/usr/bin/chromium")
INSTALL = "apt-get update && apt-get install -y chromium"
WINDOW = (1280, 900)
ATTEMPTS = 8
BUDGET_MS = 15_000
RUN_DEADLINE_S = 180.0
# A page fading in is drawn dimmed: its title, white once drawn, is grey in this box (left, top, right, bottom).
TITLE_BOX = (272, 0, 1000, 250)
WHITE = 200
# The screenshots keep a palette of this many colours: a tenth of the size, and the UI's colours survive.
COLOURS = 128


def test_the_ui_shows_outcomes_the_warehouse_the_charts_and_the_watcher(service: Service, tmp_path: Path) -> None:
    assert CHROMIUM.exists(), f"the browser test needs Debian's Chromium at {CHROMIUM}: {INSTALL}"
    good, low, empty = "ui good sales.csv", "ui low quality.csv", "ui empty.csv"
    dirty = [f"{610100 + index},,,0,12/2/2010 9:{index:02d},0,,United Kingdom" for index in range(20)]
    runs: dict[str, Any] = {}
    # One at a time: files dropped together load in one batch run, and the runs list is to show each outcome.
    for name, text in (
        (good, csv_text(uci_rows(600000, 40))),
        (low, csv_text(uci_rows(610000, 10) + dirty)),
        (empty, ""),
    ):
        drop(service, name, text)
        runs[name] = ended_run(service, name)
    assert {name: (run.state.type.value, run.state.name) for name, run in runs.items()} == {
        good: ("COMPLETED", "Completed"),
        low: ("COMPLETED", "Low quality"),
        empty: ("FAILED", "Failed"),
    }
    assert runs[empty].state.message == f"{empty}: file is empty"
    ui = service.api_url.removesuffix("/api")
    browser = Browser(tmp_path, Path(os.environ.get("UI_SCREENSHOTS", tmp_path / "screenshots")))

    browser.page(lambda: f"{ui}/flow-runs", "flow-runs", ["Low quality", f"file-drop: {low}", f"file-drop: {empty}"])
    browser.page(
        lambda: f"{ui}/flow-runs/flow-run/{runs[empty].id}",
        "failed-run",
        [f"(no retry): {empty}: file is empty", f"Finished in state Failed('{empty}: file is empty')"],
        height=1700,
    )
    browser.page(lambda: f"{ui}/artifacts", "artifacts", ["medallion-warehouse", "alive, last heartbeat"])
    browser.page(
        lambda: artifact_url(service, ui, "medallion-warehouse"),
        "warehouse",
        ["Lineage", "gold.kpis", 'src="data:image/svg+xml;base64,'],
        height=2200,
    )
    browser.page(
        lambda: artifact_url(service, ui, "medallion-quality-chart"),
        "quality-chart",
        ["Quality over time", 'src="data:image/png;base64,'],
    )
    browser.page(
        lambda: artifact_url(service, ui, "medallion-revenue-chart"),
        None,
        ["Net revenue by month", 'src="data:image/png;base64,'],
    )
    # The watcher's page is replaced at every heartbeat: its address is read again at each attempt.
    browser.page(lambda: artifact_url(service, ui, "medallion-watcher"), "watcher", ["Alive", empty])


class Browser:
    """Headless Chromium, one process per page, with a profile of its own in the test's folder."""

    def __init__(self, folder: Path, screenshots: Path) -> None:
        self._folder = folder
        self._screenshots = screenshots

    def page(
        self, address: Callable[[], str], name: str | None, expected: list[str], *, height: int = WINDOW[1]
    ) -> str:
        """The DOM of the page once it shows every expected text and no longer fades in; its screenshot is kept as
        <screenshots>/<name>.png (unless `name` is None)."""
        shot = self._folder / f"{name or 'page'}.png"
        dom = ""
        for attempt in range(ATTEMPTS):
            url = address()
            dom = self._render(url, shot, height, BUDGET_MS + attempt * 5_000)
            if all(text in dom for text in expected) and fully_drawn(shot):
                if name is not None:
                    self._screenshots.mkdir(parents=True, exist_ok=True)
                    keep_small(shot, self._screenshots / f"{name}.png")
                return dom
        missing = [text for text in expected if text not in dom]
        raise AssertionError(f"{address()} did not show {missing} in {ATTEMPTS} loads; last DOM ends {dom[-2000:]}")

    def _render(self, url: str, shot: Path, height: int, budget_ms: int) -> str:
        command = [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",  # the tests may run as root, where Chromium's sandbox refuses to start
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            f"--user-data-dir={self._folder / 'profile'}",
            f"--window-size={WINDOW[0]},{height}",
            f"--virtual-time-budget={budget_ms}",
            f"--screenshot={shot}",
            "--dump-dom",
            url,
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
        assert result.returncode == 0, f"chromium exited with {result.returncode}: {result.stderr[-2000:]}"
        return result.stdout


def ended_run(service: Service, name: str) -> Any:
    """The one run of `name`, once it has ended."""

    def ended() -> Any:
        runs = service.runs_for(name)
        if len(runs) == 1 and runs[0].state is not None and runs[0].state.is_final():
            return runs[0]
        return None

    return wait_until(ended, RUN_DEADLINE_S, f"the run of {name} to end")


def artifact_url(service: Service, ui: str, key: str) -> str:
    """The UI page of the latest version of a keyed artifact."""
    return f"{ui}/artifacts/artifact/{latest_artifacts(service)[key].latest_id}"


def fully_drawn(screenshot: Path) -> bool:
    """Whether the page's title is drawn in white, not dimmed by its fade-in."""
    with Image.open(screenshot) as image:
        brightest = max(image.convert("L").crop(TITLE_BOX).getdata())
    return brightest >= WHITE


def keep_small(screenshot: Path, target: Path) -> None:
    """The screenshot with a palette of COLOURS colours, saved at `target`."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(screenshot) as image:
        image.convert("RGB").quantize(COLOURS, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE).save(
            target, optimize=True
        )
