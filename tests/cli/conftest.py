"""The backend as a real process (tests/backend/backend_process.py) serves the commands that talk to it."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "backend"))
