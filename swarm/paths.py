"""Where swarm keeps its runtime state by default: one definition of each folder under `storage/`
(git-ignored), imported by every room that needs one."""

from __future__ import annotations

__all__ = ["DEFAULT_MODELS_DIR", "STORAGE_DIR"]

STORAGE_DIR = "storage"
"""The working directory's folder for everything swarm writes."""

DEFAULT_MODELS_DIR = f"{STORAGE_DIR}/models"
"""Trained router versions (one folder each, `CURRENT` names the serving one)."""
