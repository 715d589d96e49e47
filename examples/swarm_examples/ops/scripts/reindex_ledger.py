"""A long maintenance job (it sleeps): the script runner's timeout must stop it."""

from __future__ import annotations

import sys
import time

if __name__ == "__main__":
    sys.stdout.write("reindexing the ledger…\n")
    sys.stdout.flush()
    time.sleep(float(sys.argv[1]) if len(sys.argv) > 1 else 60.0)
    sys.stdout.write("done\n")
