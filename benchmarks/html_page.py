"""``python -m benchmarks.html_page``: a 100-row HTML list page against the same JSON list.

The microblog on a fresh SQLite file with 100 messages, answered in process through the
Flask test client (the server is the same for both, so the ratio is the page's own cost):
the median of many requests for ``/messages?limit=100`` with a browser's ``Accept`` and
with none. The issue's target: the page within 2x the JSON list's time.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
ROWS = 100
RUNS = 300


def main() -> int:
    sys.path.insert(0, str(ROOT / "examples" / "microblog"))
    from microblog.app import create_app

    from tablerest.auth import issue_token
    from tablerest.extension import state_of
    from tablerest.migrations import Migrations, upgrade

    with tempfile.TemporaryDirectory() as folder:
        app = create_app({"DATABASE_URL": f"sqlite:///{folder}/bench.db",
                          "TABLEREST_SECRET_KEY": "benchmark-secret-0123456789abcdef"})
        upgrade(Migrations.for_app(app))
        client = app.test_client()
        client.post("/users", json={"name": "bench", "email": "bench@example.com",
                                    "password": "long enough secret"})
        token = issue_token(state_of(app), 1)["access_token"]
        for number in range(ROWS):
            client.post("/messages", json={"content": f"message {number} " * 4},
                        headers={"Authorization": f"Bearer {token}"})
        url = f"/messages?limit={ROWS}"
        timings: dict[str, list[float]] = {"json": [], "html": []}
        for _ in range(RUNS):
            for name, headers in (("json", {}), ("html", BROWSER)):
                start = time.perf_counter()
                response = client.get(url, headers=headers)
                timings[name].append(time.perf_counter() - start)
                assert response.status_code == 200
        state_of(app).engine.dispose()
    json_ms = statistics.median(timings["json"]) * 1000
    html_ms = statistics.median(timings["html"]) * 1000
    sys.stdout.write(f"| list of {ROWS} messages | JSON {json_ms:.2f} ms | HTML {html_ms:.2f} ms "
                     f"| HTML/JSON {html_ms / json_ms:.2f}x (target <= 2x) |\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
