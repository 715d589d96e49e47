"""The default encoder served by ONNX Runtime: exported once, offline, from the installed weights.

A BERT-family sentence-transformers folder (the packaged all-MiniLM-L6-v2 among them) is exported
to ONNX with `torch.onnx` the first time it is asked for, quantised to int8 with ONNX Runtime's
dynamic quantisation (the default variant) and kept in a per-machine cache under a fingerprint of
the weights, the variant, the opset and the onnxruntime version. Serving imports onnxruntime,
tokenizers and numpy only: never torch.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from swarm.errors import ConfigError

__all__ = [
    "DEFAULT_VARIANT",
    "OPSET",
    "VARIANTS",
    "OnnxEncoder",
    "encoder_cache_dir",
    "export_onnx",
    "is_exportable_folder",
]

log = logging.getLogger(__name__)

VARIANTS = ("int8", "fp32")
DEFAULT_VARIANT = "int8"
"""int8 (dynamic quantisation, per-channel weights) is 1.7-1.8x as fast as fp32 and as accurate for
a logistic regression on BANKING77 embeddings (see BENCHMARKS.md, "Encoders")."""

OPSET = 17
RECIPES = {"fp32": 1, "int8": 2}
"""Bump a variant's number when its export steps change, so old cached exports, cached embeddings
and trained heads are not reused (int8 2: per-channel weight scales)."""

VARIANT_FILE = "swarm_encoder.json"
"""Optional, in a model folder: {"variant": "fp32"} names the variant that folder serves by default
(a fine-tuned encoder saved inside a router artifact keeps the variant it was trained on)."""

ProgressFn = Callable[[int], None]

_SOURCE_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "sentence_bert_config.json",
    "modules.json",
    "1_Pooling/config.json",
)


def encoder_cache_dir() -> Path:
    """$SWARM_ENCODER_CACHE, else $XDG_CACHE_HOME/swarm/encoders, else ~/.cache/swarm/encoders.

    Per machine, not per project: every folder a test or the CLI runs in reuses one export."""
    explicit = os.environ.get("SWARM_ENCODER_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "swarm" / "encoders"


def is_exportable_folder(folder: Path) -> bool:
    """True when `folder` holds a BERT model that this module exports exactly as
    sentence-transformers runs it: BERT weights in safetensors, a fast tokenizer, mean pooling and
    nothing after it but normalisation (a Dense layer or another pooling is left to
    sentence-transformers)."""
    needed = ("config.json", "model.safetensors", "tokenizer.json")
    if not all((folder / name).is_file() for name in needed):
        return False
    try:
        config = json.loads((folder / "config.json").read_text())
        if config.get("model_type") != "bert" or config.get("hidden_act", "gelu") != "gelu":
            return False
        if config.get("position_embedding_type", "absolute") != "absolute":
            return False
        pooling = folder / "1_Pooling" / "config.json"
        if pooling.exists():
            mode = json.loads(pooling.read_text())
            others = [k for k, v in mode.items() if k.startswith("pooling_mode") and v]
            if others != ["pooling_mode_mean_tokens"]:
                return False
        modules = folder / "modules.json"
        if modules.exists():
            kinds = {m.get("type", "") for m in json.loads(modules.read_text())}
            known = {
                "sentence_transformers.models.Transformer",
                "sentence_transformers.models.Pooling",
                "sentence_transformers.models.Normalize",
            }
            if not kinds <= known:
                return False
    except (OSError, ValueError, AttributeError):
        return False
    return True


def folder_variant(folder: Path) -> str:
    """The variant `folder` asks to be served with (its `swarm_encoder.json`), else the default."""
    marker = folder / VARIANT_FILE
    if marker.is_file():
        try:
            variant = json.loads(marker.read_text()).get("variant", DEFAULT_VARIANT)
        except (OSError, ValueError, AttributeError) as exc:
            raise ConfigError(f'{marker}: unreadable ({exc}); expected {{"variant": ...}}') from exc
        if variant not in VARIANTS:
            raise ConfigError(f"{marker}: variant {variant!r}, expected one of {VARIANTS}")
        return str(variant)
    return DEFAULT_VARIANT


# ---- the weights' hash, remembered by file identity ---------------------------------------------


def source_hash(folder: Path, cache_dir: Path | None = None) -> str:
    """sha256 over the files that decide the embeddings (weights, config, tokenizer, pooling).

    Hashing 90 MB of weights takes a few tenths of a second, too long for every cold start, so the
    digest is remembered in the cache under the files' path, size, mtime and inode."""
    files = [folder / name for name in _SOURCE_FILES if (folder / name).is_file()]
    identity = hashlib.sha256()
    for p in files:
        st = p.stat()
        identity.update(f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}\n".encode())
    memo = (cache_dir or encoder_cache_dir()) / "sources" / identity.hexdigest()[:32]
    with contextlib.suppress(OSError):
        known = memo.read_text().strip()
        if len(known) == 64:
            return known
    digest = hashlib.sha256()
    for p in files:
        digest.update(p.relative_to(folder).as_posix().encode() + b"\0")
        with p.open("rb") as f:
            digest.update(hashlib.file_digest(f, "sha256").digest())
    value = digest.hexdigest()
    with contextlib.suppress(OSError):  # a read-only cache only costs the hash next time
        _write_atomic(memo, value + "\n")
    return value


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


# ---- the one-time export -------------------------------------------------------------------------


def _runtime_version() -> str:
    import onnxruntime

    return str(onnxruntime.__version__)


def export_key(source: str, variant: str) -> str:
    """The cache folder's name: weights, variant, opset, recipe and the onnxruntime that optimised
    the graph (a saved optimised graph may hold operators of that runtime only)."""
    recipe = RECIPES[variant]
    text = f"{source}|{variant}|opset{OPSET}|recipe{recipe}|onnxruntime{_runtime_version()}"
    return f"{variant}-{hashlib.sha256(text.encode()).hexdigest()[:24]}"


def export_onnx(
    folder: str | Path, variant: str = DEFAULT_VARIANT, *, cache_dir: Path | None = None
) -> Path:
    """The cached ONNX model for `folder` and `variant`, exported first if missing.

    Returns the path of `model.onnx` inside `<cache>/<variant>-<key>/`. The export needs torch and
    transformers (once per machine and model); it is written to a temporary folder and renamed into
    place, under a file lock, so two processes never export the same model twice or see half a file.
    Raises ConfigError when torch is missing or the export does not reproduce the torch model.
    """
    if variant not in VARIANTS:
        raise ConfigError(f"unknown ONNX variant {variant!r}; expected one of {VARIANTS}")
    folder = Path(folder)
    root = cache_dir or encoder_cache_dir()
    target = root / export_key(source_hash(folder, root), variant)
    model = target / "model.onnx"
    if model.is_file():
        return model
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"cannot write the encoder cache {root} ({exc}); set SWARM_ENCODER_CACHE to a "
            "writable folder"
        ) from exc
    with _file_lock(root / f".{target.name}.lock"):
        if model.is_file():  # another process finished while this one waited
            return model
        work = Path(tempfile.mkdtemp(dir=root, prefix=f".{target.name}."))
        try:
            started = time.monotonic()
            if variant == "fp32":
                log.info("exporting %s to ONNX (once per machine; needs torch)", folder)
                # Kept as exported: int8 is quantised from it (the quantiser cannot read a graph
                # fused by ONNX Runtime); sessions apply the same fusions when they load it.
                _export_fp32(folder, work / "model.onnx")
            else:
                log.info("quantising %s to int8 (once per machine)", folder)
                raw = work / "raw.onnx"
                _quantise_int8(export_onnx(folder, "fp32", cache_dir=root), raw)
                _save_optimised(raw, work / "model.onnx")
                raw.unlink()
            meta = {
                "source": str(folder),
                "source_sha256": source_hash(folder, root),
                "variant": variant,
                "opset": OPSET,
                "recipe": RECIPES[variant],
                "onnxruntime": _runtime_version(),
                "seconds": round(time.monotonic() - started, 1),
            }
            (work / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
            if model.is_file():  # exported meanwhile by a process that could not take the lock
                return model
            if target.exists():  # a folder left without its model (removed by hand): replace it
                shutil.rmtree(target)
            os.replace(work, target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return model


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock (POSIX flock). Without fcntl the atomic rename alone keeps the
    cache whole; two processes may then both export, and the later one keeps the first's."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _export_fp32(folder: Path, out: Path) -> None:
    """torch.onnx (TorchScript exporter) of BertModel + mean pooling + L2 normalisation, then a
    check that ONNX Runtime reproduces torch on a padded batch."""
    import warnings

    try:
        import torch
        from transformers import BertModel
        from transformers.utils import logging as hf_logging
    except ImportError as exc:
        raise ConfigError(
            f"exporting {folder} to ONNX needs torch and transformers, once per machine: {exc}"
        ) from exc

    class SentenceEmbedding(torch.nn.Module):
        """sentence-transformers' Pooling(mean) and Normalize, on BertModel's last hidden state."""

        def __init__(self, bert: Any) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            hidden = self.bert(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=torch.zeros_like(input_ids),
            ).last_hidden_state  # (batch, seq, dim)
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (batch, seq, 1)
            summed = (hidden * mask).sum(1)  # (batch, dim)
            pooled = summed / torch.clamp(mask.sum(1), min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2, dim=1)

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        bert = BertModel.from_pretrained(
            str(folder), add_pooling_layer=False, attn_implementation="eager"
        )
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{folder}: cannot load the weights to export them ({exc})") from exc
    module = SentenceEmbedding(bert).eval()
    # A padded sample: the traced graph must take the masked path, not the all-ones shortcut.
    ids = torch.tensor([[101, 7592, 2088, 2003, 1037, 3231, 102], [101, 7592, 102, 0, 0, 0, 0]])
    mask = (ids != 0).long()
    with warnings.catch_warnings(), torch.no_grad():
        # The TorchScript exporter warns that it is deprecated and about traced Python branches;
        # the check below is what tells whether the graph is right.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (ids, mask),
            str(out),
            dynamo=False,
            input_names=["input_ids", "attention_mask"],
            output_names=["embeddings"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "sequence"},
                "attention_mask": {0: "batch", 1: "sequence"},
                "embeddings": {0: "batch"},
            },
            opset_version=OPSET,
            do_constant_folding=True,
        )
        check_ids = torch.tensor([[101, 2026, 4003, 102, 0], [101, 2338, 1037, 3462, 102]])
        expected = module(check_ids, (check_ids != 0).long()).numpy()
    got = _session(out, threads=1).run(
        None, {"input_ids": check_ids.numpy(), "attention_mask": (check_ids != 0).long().numpy()}
    )[0]
    if not np.allclose(got, expected, atol=1e-4):
        raise ConfigError(
            f"the ONNX export of {folder} does not reproduce torch "
            f"(max difference {float(np.abs(got - expected).max()):.2e})"
        )


def _quantise_int8(fp32: Path, out: Path) -> None:
    """onnxruntime.quantization.quantize_dynamic: int8 weights with one scale per output channel,
    activations quantised at run time; MatMuls only (the embedding tables stay float).

    Per-channel scales matter here: with one scale per tensor, BANKING77 accuracy of a logistic
    regression on the embeddings fell 0.46 points below fp32 (cosine to fp32 0.968); per channel it
    matches fp32 (cosine 0.994) at the same speed (BENCHMARKS.md, "Encoders")."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quiet = logging.getLogger()
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # "consider pre-processing" is advice for static quantisation
    try:
        quantize_dynamic(
            str(fp32),
            str(out),
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul"],
        )
    finally:
        quiet.setLevel(level)


def _save_optimised(model: Path, out: Path) -> None:
    """Save ONNX Runtime's extended graph optimisations (fusions): later sessions load faster."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(out)
    ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])


def _session(model: Path, *, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    if threads > 1:
        # Idle workers sleep instead of spinning: on a shared 2-core machine a spinning thread
        # steals the core the other one needs.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])


# ---- serving ------------------------------------------------------------------------------------


class OnnxEncoder:
    """A BERT-family sentence-transformers folder served by ONNX Runtime.

    `encode(texts) -> (len(texts), dimension)` float32 unit vectors: mean pooling over real tokens
    and L2 normalisation, as sentence-transformers' `encode(normalize_embeddings=True)`. Texts are
    tokenised with `tokenizers`, sorted by length and padded per batch. One text runs on one
    intra-op thread (lowest latency, and concurrent queries do not fight); batches on
    `batch_threads` (2 by default). The int8 variant encodes every text alone, so a text's vector
    (and its routing) never depends on what else is in the batch. The model is exported on first
    use (see `export_onnx`).

    `name` is `<model>@onnx-<variant>`; `fingerprint` hashes the weights, the variant, the opset
    and the export recipe, so a head trained on one variant never loads on another.
    """

    def __init__(
        self,
        folder: str | Path,
        *,
        variant: str | None = None,
        name: str | None = None,
        batch_threads: int = 2,
        cache_dir: Path | None = None,
    ) -> None:
        from tokenizers import Tokenizer

        self.folder = Path(folder)
        if not is_exportable_folder(self.folder):
            raise ConfigError(
                f"{self.folder}: not a BERT sentence-transformers folder with mean pooling "
                "(config.json, model.safetensors, tokenizer.json); serve it with "
                "sentence-transformers instead (name@sentence-transformers)"
            )
        self.variant = variant or folder_variant(self.folder)
        if self.variant not in VARIANTS:
            raise ConfigError(f"unknown ONNX variant {self.variant!r}; expected one of {VARIANTS}")
        self.name = f"{name or self.folder}@onnx-{self.variant}"
        cache = cache_dir or encoder_cache_dir()
        source = source_hash(self.folder, cache)
        self.fingerprint = hashlib.sha256(
            f"onnx|{source}|{self.variant}|opset{OPSET}|recipe{RECIPES[self.variant]}".encode()
        ).hexdigest()[:16]
        config = json.loads((self.folder / "config.json").read_text())
        self.dimension = int(config["hidden_size"])
        max_seq = int(config.get("max_position_embeddings", 512))
        st_config = self.folder / "sentence_bert_config.json"
        if st_config.is_file():
            max_seq = min(
                max_seq, int(json.loads(st_config.read_text()).get("max_seq_length", max_seq))
            )
        self.max_seq_length = max_seq
        self.tokenizer = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        self.tokenizer.no_padding()  # padded per batch below, to the batch's longest text
        self.tokenizer.enable_truncation(max_seq)
        self.model_path = export_onnx(self.folder, self.variant, cache_dir=cache)
        self.batch_threads = max(1, min(batch_threads, os.cpu_count() or 1))
        self._single = _session(self.model_path, threads=1)
        self._batched: Any = None  # created on the first batch: a one-query process never pays
        self._lock = threading.Lock()

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, progress: ProgressFn | None = None
    ) -> np.ndarray:
        """(len(texts), dimension) float32, unit length; `progress(n)` after each batch."""
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not len(texts):
            return out
        ids = [e.ids for e in self.tokenizer.encode_batch(list(texts))]
        if self.variant == "int8":
            # Dynamic int8 quantisation scales activations over the whole input tensor, so a
            # text's vector would shift with its batch-mates and the same text could be routed
            # differently in another batch: int8 encodes each text alone.
            batch_size = 1
        session = self._single if len(ids) == 1 or batch_size == 1 else self._batch_session()
        order = np.argsort([len(x) for x in ids], kind="stable")
        for start in range(0, len(order), batch_size):
            chosen = order[start : start + batch_size]
            batch = [ids[i] for i in chosen]
            seq = max(len(x) for x in batch)
            input_ids = np.zeros((len(batch), seq), dtype=np.int64)  # (batch, seq)
            mask = np.zeros((len(batch), seq), dtype=np.int64)
            for row, token_ids in enumerate(batch):
                input_ids[row, : len(token_ids)] = token_ids
                mask[row, : len(token_ids)] = 1
            out[chosen] = session.run(None, {"input_ids": input_ids, "attention_mask": mask})[0]
            if progress is not None:
                progress(len(batch))
        return out

    def _batch_session(self) -> Any:
        if self.batch_threads == 1:
            return self._single
        with self._lock:
            if self._batched is None:
                self._batched = _session(self.model_path, threads=self.batch_threads)
            return self._batched
