"""Optional: fine-tune the BERT encoder itself on the labelled texts, on CPU, within a time budget.

A cosine classifier over the mean-pooled, normalised embeddings is trained with the encoder; the
result is a sentence-transformers-style folder, served on ONNX Runtime in the base's variant.
"""

from __future__ import annotations

import logging
import math
import shutil
import tempfile
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from swarm.errors import ConfigError
from swarm.router.encoders import Encoder
from swarm.router.onnx import VARIANT_FILE, OnnxEncoder

__all__ = ["finetune_encoder"]

log = logging.getLogger(__name__)

_COPIED = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "special_tokens_map.json",
    "sentence_bert_config.json",
    "modules.json",
    "config_sentence_transformers.json",
)


def finetune_encoder(
    base: Encoder,
    texts: list[str],
    labels: np.ndarray,
    *,
    minutes: float = 10.0,
    epochs: int = 4,
    batch_size: int = 16,
    learning_rate: float = 3e-5,
    seed: int = 0,
    progress: Callable[[str, int], Callable[[int], None]] | None = None,
) -> OnnxEncoder:
    """A copy of `base` fine-tuned to separate `labels`; stops after `epochs` or `minutes`.

    The returned encoder carries `artifact_folder`: saving the router copies it into the artifact.
    """
    if not isinstance(base, OnnxEncoder):
        raise ConfigError(
            f"--finetune supports BERT-family encoders served on ONNX Runtime (the default); "
            f"{base.name!r} is not one"
        )
    import torch
    from torch.nn import functional as F
    from transformers import BertModel
    from transformers.utils import logging as hf_logging

    # Loading a sentence-transformers folder as BertModel reports its unused pooler; not news.
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    torch.manual_seed(seed)
    model = BertModel.from_pretrained(str(base.folder), add_pooling_layer=False)
    model.train()
    tokenizer = base.tokenizer
    n_labels = int(labels.max()) + 1
    # Class vectors start at the mean embedding of their texts: the classifier is sensible from
    # step one, so the encoder is not pulled about by a random head.
    with torch.no_grad():
        start_vectors = torch.from_numpy(base.encode(texts))
    centroids = torch.zeros(n_labels, start_vectors.shape[1])
    centroids.index_add_(0, torch.from_numpy(labels), start_vectors)
    classifier = torch.nn.Parameter(F.normalize(centroids, dim=-1))
    scale = 20.0
    optimiser = torch.optim.AdamW(
        [
            {"params": model.parameters(), "lr": learning_rate},
            {"params": [classifier], "lr": learning_rate * 100},
        ],
        weight_decay=0.01,
    )
    steps_per_epoch = math.ceil(len(texts) / batch_size)
    total_steps = steps_per_epoch * epochs
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda step: min(1.0, (step + 1) / max(1, total_steps // 10))
    )
    advance = progress("fine-tuning encoder", total_steps) if progress else None
    deadline = time.monotonic() + minutes * 60
    y = torch.from_numpy(labels)
    generator = torch.Generator().manual_seed(seed)
    done = 0
    for _ in range(epochs):
        order = torch.randperm(len(texts), generator=generator)
        for s in range(steps_per_epoch):
            batch = order[s * batch_size : (s + 1) * batch_size].tolist()
            ids, mask = _pad([tokenizer.encode(texts[i]).ids for i in batch])
            hidden = model(
                input_ids=ids, attention_mask=mask.long()
            ).last_hidden_state  # (b, seq, dim)
            pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)  # (b, dim)
            logits = scale * F.normalize(pooled, dim=-1) @ F.normalize(classifier, dim=-1).T
            loss = F.cross_entropy(logits, y[batch], label_smoothing=0.1)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimiser.step()
            schedule.step()
            done += 1
            if advance is not None:
                advance(1)
            if time.monotonic() > deadline:
                break
        if time.monotonic() > deadline:
            log.info(
                "fine-tuning stopped at its time budget after %d of %d steps", done, total_steps
            )
            break
    if advance is not None and done < total_steps:
        advance(total_steps - done)
    folder = Path(tempfile.mkdtemp(prefix="swarm-finetuned-"))
    model.save_pretrained(str(folder), safe_serialization=True)
    for name in _COPIED:
        if (base.folder / name).is_file():
            shutil.copy2(base.folder / name, folder / name)
    if (base.folder / "1_Pooling").is_dir():
        shutil.copytree(base.folder / "1_Pooling", folder / "1_Pooling")
    # The head is trained on the variant that will serve: the folder says which (see onnx.py).
    (folder / VARIANT_FILE).write_text(f'{{"variant": "{base.variant}"}}\n')
    tuned = OnnxEncoder(folder, variant=base.variant, name=f"{base.folder.name} (fine-tuned)")
    tuned.artifact_folder = folder  # type: ignore[attr-defined]
    # The weights are in memory now; the folder only has to live until the artifact copies it.
    weakref.finalize(tuned, shutil.rmtree, folder, ignore_errors=True)
    return tuned


def _pad(batch: list[list[int]]) -> tuple[Any, Any]:
    import torch

    seq = max(len(x) for x in batch)
    ids = torch.zeros(len(batch), seq, dtype=torch.long)
    mask = torch.zeros(len(batch), seq, dtype=torch.float32)
    for row, x in enumerate(batch):
        ids[row, : len(x)] = torch.tensor(x)
        mask[row, : len(x)] = 1.0
    return ids, mask
