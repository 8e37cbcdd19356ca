"""Passgate load benchmark: `make bench` (or `python -m bench`) measures the ceremonies against real servers.

It starts its own Passgate nodes (SQLite, or PostgreSQL + Redis), drives sign-ups and sign-ins with a load
generator of virtual browsers holding real software passkeys, reads the servers' CPU accounting from /proc,
measures reference verify rates (OpenSSL, py_webauthn) on the same machine, and prints one table
(also written to bench/results.json). See BENCHMARKS.md.
"""

import sys
from pathlib import Path

# tests/services.py (private PostgreSQL and Redis servers) is imported from the repository root.
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
