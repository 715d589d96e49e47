"""Versioned router artifacts: `models/<version>/` with weights, examples and a manifest, written
to a temp folder and renamed into place; `models/CURRENT` names the version that serves.

Layout of a version folder:
    manifest.json        encoder, labels, agent-set and data hashes, metrics, temperature…
    head.safetensors     the head's weights (see `Router.logits` for the names)
    examples.safetensors training embeddings (float16), for `explain`
    examples.jsonl       training texts and labels, same order
    encoder/             only for a fine-tuned encoder: its own weights and tokenizer
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from swarm.errors import ArtifactError, ConfigError
from swarm.router.encoders import Encoder, load_encoder
from swarm.router.policy import ExampleBank, RoutingPolicy

if TYPE_CHECKING:
    from swarm.router.router import Router

__all__ = [
    "CURRENT_FILE",
    "FORMAT_VERSION",
    "MANIFEST_FILE",
    "agent_set_fingerprint",
    "check_agent_names",
    "current_version",
    "describe_version",
    "find_version",
    "list_versions",
    "load_router_artifact",
    "resolve_artifact_dir",
    "save_router_artifact",
    "set_current",
]

FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
CURRENT_FILE = "CURRENT"
HEAD_FILE = "head.safetensors"
EXAMPLES_FILE = "examples.safetensors"
TEXTS_FILE = "examples.jsonl"
ENCODER_DIR = "encoder"
ARTIFACT_ENCODER = "artifact:encoder"
"""The encoder name recorded when the encoder was fine-tuned and ships inside the artifact."""

RETRAIN_HINT = "retrain with `swarm router train --agents MODULE`"


def agent_set_fingerprint(names: Sequence[str]) -> str:
    """The same hash as `AgentRegistry.fingerprint()`, computed from names alone."""
    return hashlib.sha256("\n".join(sorted(names)).encode()).hexdigest()[:16]


# ---- saving ------------------------------------------------------------------------------------


def save_router_artifact(
    router: Router, models_dir: str | Path, *, make_current: bool = True
) -> Path:
    """Write `router` as `models_dir/<router.version>/` atomically; point CURRENT at it if asked.

    Everything is written into a hidden temp folder first and renamed when complete, so a crash
    leaves at most a `.tmp-*` folder, never a version that looks whole, and CURRENT keeps serving.
    """
    from safetensors.numpy import save_file

    root = Path(models_dir)
    root.mkdir(parents=True, exist_ok=True)
    version = _free_version(root, router.version)
    router.version = version
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{version}-", dir=root))
    try:
        save_file(
            {k: np.ascontiguousarray(v) for k, v in router.weights.items()}, str(tmp / HEAD_FILE)
        )
        if router.examples is not None:
            bank = router.examples
            save_file({"embeddings": bank.embeddings.astype(np.float16)}, str(tmp / EXAMPLES_FILE))
            with (tmp / TEXTS_FILE).open("w", encoding="utf-8") as f:
                for text, label in zip(bank.texts, bank.labels, strict=True):
                    f.write(json.dumps({"text": text, "label": label}, ensure_ascii=False) + "\n")
        encoder_folder = getattr(router.encoder, "artifact_folder", None)
        if encoder_folder is not None:  # a fine-tuned encoder travels with its head
            shutil.copytree(encoder_folder, tmp / ENCODER_DIR)
        manifest = dict(router.manifest)
        manifest.update(
            format_version=FORMAT_VERSION,
            version=version,
            labels=router.head_labels,
            agents=router.labels,
            agents_fingerprint=agent_set_fingerprint(router.labels),
            normalize_groups=router.normalize_groups,
            policy=router.policy.to_dict(),
        )
        manifest.setdefault(
            "encoder",
            {
                "name": ARTIFACT_ENCODER if encoder_folder is not None else router.encoder.name,
                "fingerprint": router.encoder.fingerprint,
                "dimension": router.encoder.dimension,
            },
        )
        # Now, even for a version learnt on top of another (its manifest started as the parent's).
        manifest["created_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        manifest["files"] = {
            str(p.relative_to(tmp)): _sha256(p) for p in sorted(tmp.rglob("*")) if p.is_file()
        }
        # The manifest goes last: a folder with a manifest had all its files written first.
        (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
        os.replace(tmp, root / version)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    router.manifest = manifest
    if make_current:
        set_current(root, version)
    return root / version


def _free_version(root: Path, wanted: str) -> str:
    version, n = wanted, 1
    while (root / version).exists():
        n += 1
        version = f"{wanted}-{n}"
    return version


def set_current(models_dir: str | Path, version: str) -> None:
    """Point `models_dir/CURRENT` at `version` (which must load), atomically."""
    root = Path(models_dir)
    if not (root / version / MANIFEST_FILE).is_file():
        raise ArtifactError(f"{root / version}: no such router version (no {MANIFEST_FILE})")
    tmp = root / f".{CURRENT_FILE}.tmp"
    tmp.write_text(version + "\n")
    os.replace(tmp, root / CURRENT_FILE)


def current_version(models_dir: str | Path) -> str | None:
    pointer = Path(models_dir) / CURRENT_FILE
    if not pointer.is_file():
        return None
    return pointer.read_text().strip() or None


def list_versions(models_dir: str | Path) -> list[str]:
    """Complete versions (with a manifest), oldest first: in the order they were saved (the
    manifest is the last file a save writes), then by name."""
    root = Path(models_dir)
    if not root.is_dir():
        return []
    found = [
        p for p in root.iterdir() if (p / MANIFEST_FILE).is_file() and not p.name.startswith(".")
    ]

    def saved(p: Path) -> tuple[int, str]:
        return ((p / MANIFEST_FILE).stat().st_mtime_ns, p.name)

    return [p.name for p in sorted(found, key=saved)]


def find_version(models_dir: str | Path, ref: str) -> str:
    """The saved version named `ref`, or the only one whose name begins with it.

    Raises `ArtifactError` for none or several, naming the latest versions."""
    versions = list_versions(models_dir)
    matches = [v for v in versions if v == ref] or [v for v in versions if v.startswith(ref)]
    if len(matches) != 1:
        known = ", ".join(versions[-5:]) or "none"
        what = "is ambiguous" if matches else "is not a version"
        raise ArtifactError(f"{ref!r} {what} in {models_dir} (latest: {known})")
    return matches[0]


def describe_version(manifest: dict[str, Any], serving: str | None) -> dict[str, Any]:
    """One version as `swarm router versions` and `swarm serve` show it: its agents and parent,
    each figure with what it was measured on, and the promotion gate's verdict."""
    promotion = manifest.get("promotion") or None
    metrics = manifest.get("metrics") or {}
    row: dict[str, Any] = {
        "version": manifest["version"],
        "serving": manifest["version"] == serving,
        "created_at": manifest.get("created_at"),
        "agents": manifest.get("agents", []),
        "parent": manifest.get("parent"),
        "compared_with": manifest.get("compared_with"),
        "promotion": promotion,
        "metrics": metrics,
    }
    if promotion is not None and promotion.get("after"):
        row["accuracy"] = promotion["after"]["accuracy"]
        row["measured_on"] = promotion.get("held_out") or {"name": "held-out set"}
    elif "heldout_accuracy" in metrics:
        row["accuracy"] = metrics["heldout_accuracy"]
        size = int(metrics.get("heldout_examples", 0))
        row["measured_on"] = {"name": "out-of-fold training examples", "size": size}
    return row


# ---- loading -----------------------------------------------------------------------------------


def resolve_artifact_dir(path: str | Path) -> Path:
    """A version folder as given, or the version a models folder's CURRENT names."""
    p = Path(path)
    if (p / MANIFEST_FILE).is_file():
        return p
    if not p.exists():
        raise ArtifactError(f"{p}: no such router artifact or models folder")
    version = current_version(p)
    if version is not None:
        return p / version
    if p.is_dir() and any(p.iterdir()):
        routers = router_folders(p)
        if routers:
            # A folder of models folders (storage/models holds one per demo): name them.
            names = ", ".join(f.name for f in routers)
            raise ArtifactError(
                f"{p} holds the routers of: {names}; name one of their folders (e.g. {routers[0]})"
            )
        raise ArtifactError(
            f"{p}: not a router artifact (no {MANIFEST_FILE}) and no {CURRENT_FILE} file naming "
            "one; "
            "the artifact may be partial or corrupt"
        )
    raise ArtifactError(f"{p}: no trained router here; train one with `swarm router train`")


def router_folders(path: str | Path) -> list[Path]:
    """The models folders directly inside `path` (subfolders with a CURRENT file), by name."""
    p = Path(path)
    if not p.is_dir():
        return []
    return sorted(f for f in p.iterdir() if f.is_dir() and (f / CURRENT_FILE).is_file())


def read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST_FILE
    if not path.is_file():
        raise ArtifactError(
            f"{folder}: not a router artifact (no {MANIFEST_FILE}; partial or corrupt?)"
        )
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{path}: corrupt manifest ({exc})") from exc
    if not isinstance(manifest, dict):
        raise ArtifactError(f"{path}: corrupt manifest (not a JSON object)")
    fmt = manifest.get("format_version")
    if fmt != FORMAT_VERSION:
        raise ArtifactError(
            f"{path}: artifact format {fmt!r}, this swarm reads format {FORMAT_VERSION}; retrain"
        )
    missing = [k for k in ("version", "labels", "encoder", "policy", "files") if k not in manifest]
    if missing:
        raise ArtifactError(f"{path}: corrupt manifest (missing {', '.join(missing)})")
    return manifest


def _verify_files(folder: Path, manifest: dict[str, Any]) -> None:
    for name, digest in manifest["files"].items():
        p = folder / name
        if not p.is_file():
            raise ArtifactError(f"{folder}: partial artifact, {name} is missing")
        if _sha256(p) != digest:
            raise ArtifactError(f"{folder}: corrupt artifact, {name} does not match its checksum")


def load_router_artifact(
    path: str | Path, *, encoder: Encoder | None = None, router_cls: type[Router]
) -> Router:
    """Load and check a router (`Router.load` calls this with its class): files against their
    checksums, weights against the labels, and the encoder (given, or the one the manifest names)
    against the fingerprint it was trained with."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    folder = resolve_artifact_dir(path)
    manifest = read_manifest(folder)
    _verify_files(folder, manifest)
    try:
        weights = load_file(str(folder / HEAD_FILE))
    except (OSError, SafetensorError) as exc:
        raise ArtifactError(f"{folder / HEAD_FILE}: unreadable weights ({exc})") from exc
    recorded = manifest["encoder"]
    if encoder is None:
        name = recorded.get("name")
        spec = str(folder / ENCODER_DIR) if name == ARTIFACT_ENCODER else str(name)
        try:
            encoder = load_encoder(spec)
        except ConfigError as exc:
            raise ArtifactError(f"{folder}: cannot load its encoder {name!r}: {exc}") from exc
    if (
        recorded.get("fingerprint") != encoder.fingerprint
        or recorded.get("dimension") != encoder.dimension
    ):
        raise ArtifactError(
            f"{folder}: trained with encoder {recorded.get('name')!r} "
            f"(fingerprint {recorded.get('fingerprint')}, {recorded.get('dimension')} dims) "
            "but the "
            f"encoder now is {encoder.name!r} (fingerprint {encoder.fingerprint}, "
            f"{encoder.dimension} dims); retrain with `swarm router train`"
        )
    examples = None
    if (folder / EXAMPLES_FILE).is_file() and (folder / TEXTS_FILE).is_file():
        try:
            embeddings = load_file(str(folder / EXAMPLES_FILE))["embeddings"]
            rows = [
                json.loads(line) for line in (folder / TEXTS_FILE).read_text().splitlines() if line
            ]
            examples = ExampleBank(
                [r["text"] for r in rows], [r["label"] for r in rows], embeddings
            )
        except (OSError, SafetensorError, KeyError, ValueError) as exc:
            raise ArtifactError(f"{folder}: corrupt training examples ({exc})") from exc
        if len(examples.texts) != len(examples.embeddings):
            raise ArtifactError(
                f"{folder}: corrupt training examples (texts and embeddings differ)"
            )
    policy_raw = manifest["policy"]
    try:
        policy = RoutingPolicy.from_dict(policy_raw)
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"{folder / MANIFEST_FILE}: corrupt routing policy ({exc})") from exc
    return router_cls(
        encoder,
        weights,
        [str(label) for label in manifest["labels"]],
        policy,
        version=str(manifest["version"]),
        normalize_groups=int(manifest.get("normalize_groups", 0)),
        examples=examples,
        manifest=manifest,
    )


def check_agent_names(router: Router, agent_names: Sequence[str]) -> None:
    have, want = set(router.labels), set(agent_names)
    if have == want:
        return
    parts = []
    if want - have:
        parts.append(f"new agents: {', '.join(sorted(want - have))}")
    if have - want:
        parts.append(f"gone: {', '.join(sorted(have - want))}")
    raise ArtifactError(
        f"router {router.version} was trained for other agents ({'; '.join(parts)}); {RETRAIN_HINT}"
    )


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
