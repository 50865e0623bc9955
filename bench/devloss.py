"""Development-benchmark loss of the production affinity (`matching.affinity`).

Runs the workplace's expertise benchmark harness (`../shared/eval/goldstandard.py`, not part of
this repository) on `matching.affinity` and prints its loss; lower is better. The harness and
its data live outside the project and are never copied into it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HARNESS = ROOT.parent / "shared" / "eval" / "goldstandard.py"


def main() -> None:
    if not HARNESS.exists():
        print(f"development benchmark: harness not found at {HARNESS}; nothing measured")
        return
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    completed = subprocess.run(
        [sys.executable, str(HARNESS), "--scorer", "module:.:matching:affinity"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wanted = ("scorer", "loss", "easy-pair", "hard-pair", "time")
    for line in completed.stdout.splitlines():
        if line.strip().startswith(wanted):
            print(line)
    if completed.returncode != 0:
        print(completed.stderr[-2000:], file=sys.stderr)
        raise SystemExit(completed.returncode)


if __name__ == "__main__":
    main()
