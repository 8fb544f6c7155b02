"""Embedders: the packaged all-MiniLM-L6-v2, any sentence-transformers model, or the target model itself."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from biforget.errors import ModelError
from biforget.models.base import TextModel
from biforget.models.hub import hub_reachable, quiet_hf_libraries
from biforget.models.sources import DEFAULT_EMBEDDER, DEFAULT_EMBEDDER_NAME, default_embedder_dir

TARGET_EMBEDDER = "target"


class SentenceTransformerEmbedder:
    def __init__(self, model: Any, name: str, batch_size: int = 64) -> None:
        self.model = model
        self.name = name
        self.batch_size = batch_size

    @classmethod
    def load(cls, spec: str, device: str = "auto") -> SentenceTransformerEmbedder:
        local = spec == DEFAULT_EMBEDDER
        quiet_hf_libraries(offline=local)
        from sentence_transformers import SentenceTransformer

        from biforget.models.hf_settings import resolve_device

        location = str(default_embedder_dir()) if local else spec
        name = DEFAULT_EMBEDDER_NAME if local else spec
        on_disk = local or Path(spec).expanduser().exists()
        try:
            try:
                model = SentenceTransformer(
                    location, device=resolve_device(device), local_files_only=not on_disk
                )
            except OSError:
                if on_disk or not hub_reachable():
                    raise ModelError(
                        f"cannot load embedder {spec!r}: not a local folder, not in the Hugging Face cache, "
                        "and the hub is unreachable; use --embedder default or a local folder"
                    ) from None
                model = SentenceTransformer(location, device=resolve_device(device))
        except ModelError:
            raise
        except Exception as exc:
            raise ModelError(f"cannot load embedder {spec!r}: {str(exc).strip().splitlines()[0]}") from exc
        return cls(model, name)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.model.get_sentence_embedding_dimension() or 0), dtype=np.float32)
        vectors = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


class TargetEmbedder:
    """Mean-pooled last hidden states of the target model: the paper's setting for diversity."""

    def __init__(self, model: TextModel) -> None:
        self.model = model
        self.name = f"target:{model.name}"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return self.model.mean_hidden_states(texts)
