"""A local stand-in for ExchangeRate-API, REST Countries v5 and Datamuse that fails half of its requests.

Usage: python scripts/flaky_api_server.py PORT   (then point the *_BASE_URL settings at http://127.0.0.1:PORT)
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

RATES_FROM_GBP = {
    "GBP": 1.0,
    "USD": 1.342943,
    "EUR": 1.140396,
    "CAD": 1.834187,
    "AUD": 1.898054,
    "JPY": 210.55,
}

COUNTRIES = {
    "ireland": {
        "name": {"common": "Ireland", "official": "Republic of Ireland"},
        "cca2": "IE",
        "cca3": "IRL",
        "capital": ["Dublin"],
        "region": "Europe",
        "subregion": "Northern Europe",
        "continents": ["Europe"],
        "population": 5458600,
        "area": 70273.0,
        "timezones": ["UTC"],
        "latlng": [53.0, -8.0],
    },
    "united kingdom": {
        "name": {
            "common": "United Kingdom",
            "official": "United Kingdom of Great Britain and Northern Ireland",
        },
        "cca2": "GB",
        "cca3": "GBR",
        "capital": ["London"],
        "region": "Europe",
        "subregion": "Northern Europe",
        "continents": ["Europe"],
        "population": 69281437,
        "area": 244376.0,
        "timezones": ["UTC-08:00", "UTC", "UTC+01:00"],
        "latlng": [54.0, -2.0],
    },
    "south africa": {
        "name": {"common": "South Africa", "official": "Republic of South Africa"},
        "cca2": "ZA",
        "cca3": "ZAF",
        "capital": ["Pretoria"],
        "region": "Africa",
        "subregion": "Southern Africa",
        "continents": ["Africa"],
        "population": 63100945,
        "area": 1221037.0,
        "timezones": ["UTC+02:00"],
        "latlng": [-29.0, 24.0],
    },
}

RELATED = {
    "rabbit": ["bunny", "toy", "hare"],
    "warmer": ["heater", "mug"],
    "icicle": ["decoration", "ornament"],
}


class FlakyState:
    def __init__(self, fail_every: int = 2) -> None:
        self.fail_every = fail_every
        self.requests = 0
        self.failures = 0
        self.lock = threading.Lock()

    def should_fail(self) -> int | None:
        """Every `fail_every`-th request fails, alternating 500 and 429."""
        with self.lock:
            self.requests += 1
            if self.requests % self.fail_every:
                return None
            self.failures += 1
            return 429 if self.failures % 2 else 500


def answer(path: str) -> tuple[int, object]:
    """The status and JSON body the real API would give for `path` (with its query)."""
    url = urlparse(path)
    parts = [part for part in url.path.split("/") if part]
    query = parse_qs(url.query)
    if parts[:1] == ["v6"]:
        return _rates(parts)
    if parts[:2] == ["countries", "v5"]:
        name = query.get("q", [""])[0].casefold()
        found = [COUNTRIES[name]] if name in COUNTRIES else []
        return 200, {"success": True, "data": {"objects": found}, "errors": []}
    if parts[:1] == ["words"]:
        words = RELATED.get(query.get("ml", [""])[0].casefold(), [])
        return 200, [{"word": word, "score": 1000 - index, "tags": ["n"]} for index, word in enumerate(words)]
    return 404, {"status": 404, "message": "Not Found"}


def _rates(parts: list[str]) -> tuple[int, object]:
    if "history" in parts:
        position = parts.index("history")
        base = parts[position + 1]
        year, month, day = (int(part) for part in parts[position + 2 : position + 5])
        body: dict[str, object] = {"year": year, "month": month, "day": day, "conversion_rates": _rebased(base)}
    else:
        base = parts[-1]
        rates_key = "conversion_rates" if len(parts) == 4 else "rates"
        body = {"time_last_update_unix": int(time.time()), rates_key: _rebased(base)}
    if base not in RATES_FROM_GBP:
        return 404, {"result": "error", "error-type": "unsupported-code"}
    return 200, {"result": "success", "base_code": base, **body}


def make_handler(state: FlakyState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return

        def _send(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:  # noqa: N802
            failure = state.should_fail()
            if failure == 429:
                self._send(429, {"result": "error", "error-type": "rate-limited"}, {"Retry-After": "1"})
            elif failure == 500:
                self._send(500, {"message": "internal error"})
            else:
                self._send(*answer(self.path))

    return Handler


def _rebased(base: str) -> dict[str, float]:
    if base not in RATES_FROM_GBP:
        return {}
    divisor = RATES_FROM_GBP[base]
    return {code: rate / divisor for code, rate in RATES_FROM_GBP.items()}


def make_server(port: int, fail_every: int = 2) -> tuple[ThreadingHTTPServer, FlakyState]:
    state = FlakyState(fail_every)
    server = ThreadingHTTPServer(("127.0.0.1", port), make_handler(state))
    return server, state


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int)
    parser.add_argument("--fail-every", type=int, default=2, help="fail every Nth request (default 2: half)")
    arguments = parser.parse_args()
    server, _ = make_server(arguments.port, arguments.fail_every)
    print(f"serving on http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
