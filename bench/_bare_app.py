"""The baseline for bench/load.py: one JSON route and nothing else (no database, sessions,
templates or middleware), served by gunicorn with Tandem's gunicorn.conf.py:

    .venv/bin/gunicorn --config gunicorn.conf.py --chdir bench _bare_app:app

Not a benchmark itself: `make bench` runs bench/*.py except files starting with `_`.
"""

from __future__ import annotations

from flask import Flask

app = Flask(__name__)


@app.get("/bare")
def bare() -> dict[str, object]:
    return {"ok": True, "service": "bare"}
