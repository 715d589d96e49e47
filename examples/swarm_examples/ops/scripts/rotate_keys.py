"""Pretends to rotate the API key of one service (the sandbox has no secrets); needs its name."""

from __future__ import annotations

import sys

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.stderr.write("usage: rotate_keys SERVICE\n")
        sys.exit(2)
    sys.stdout.write(f"rotated the API key of {sys.argv[1]}\n")
