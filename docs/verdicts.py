"""Snapshot the claims report's measured verdicts for the optimizer pages: ``docs/_data/verdicts.json``.

The report takes minutes, too long for every documentation build, so its verdicts are measured once and kept
here with the command, the commit and the date that produced them; each optimizer page shows them beside the
article's claims and says where they came from. Regenerate after a change to the report::

    microdl report --seed 0 --out report/
    python docs/verdicts.py report/results.json
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

OUT = Path(__file__).resolve().parent / "_data" / "verdicts.json"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python docs/verdicts.py REPORT_FOLDER/results.json", file=sys.stderr)
        return 2
    results = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=OUT.parent, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    snapshot = {
        "command": f"microdl report --seed {results['meta'].get('seed', 0)} --out report/"
                   + (" --quick" if results["meta"].get("quick") else ""),
        "commit": commit,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "verdicts": {claim: {"verdict": v["verdict"], "evidence": v["evidence"]}
                     for claim, v in results["verdicts"].items()},
    }
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(snapshot, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {len(snapshot['verdicts'])} verdicts to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
