"""Reports free space on the volume that holds the working directory, in GiB."""

from __future__ import annotations

import shutil
import sys

if __name__ == "__main__":
    usage = shutil.disk_usage(".")
    sys.stdout.write(f"free {usage.free / 2**30:.1f} GiB of {usage.total / 2**30:.1f} GiB\n")
