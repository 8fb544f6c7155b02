"""What the speed benchmarks share: the Stage I points they prompt with, the stopwatch, and the
reference every path is measured against, plain batched `transformers.generate` on the same model.

Imported by the scripts beside it (`python benchmarks/NAME.py` puts this folder on the path).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

POINTS = [
    "Hogwarts School of Witchcraft and Wizardry",
    "Lord Voldemort",
    "Quidditch",
    "The Philosopher's Stone",
    "Diagon Alley",
    "Severus Snape",
    "The Triwizard Tournament",
    "Gryffindor House",
]
TOP_P = 0.95


def timed(label: str, model: Any, work: Callable[[], object]) -> dict[str, float]:
    """Run `work` once; the generated tokens the model counted, the seconds and tokens/s."""
    before = model.generated_tokens
    start = time.perf_counter()
    work()
    seconds = time.perf_counter() - start
    tokens = model.generated_tokens - before
    print(f"  {label}: {tokens} tokens in {seconds:.1f} s = {tokens / seconds:.1f} tokens/s", file=sys.stderr)
    return {"tokens": tokens, "seconds": seconds, "tokens_per_s": tokens / seconds}


def plain_batched(model: Any, prompts: Sequence[str], args: argparse.Namespace) -> None:
    """Sampled `generate` on the hf backend's own model and chat rendering, `args.batch_size` prompts at
    a time in input order, at `args.temperature` for `args.new_tokens`; the tokens it writes (padding and
    end-of-sequence left out) are added to the backend's count so `timed` measures both paths alike."""
    import torch

    batch_size, temperature, new_tokens = args.batch_size, args.temperature, args.new_tokens

    tokenizer = model.hf_tokenizer
    rendered = [model.render(p) for p in prompts]
    for start in range(0, len(rendered), batch_size):
        batch = tokenizer(
            rendered[start : start + batch_size], return_tensors="pt", padding=True, add_special_tokens=False
        ).to(model.device)
        with torch.inference_mode():
            out = model.model.generate(
                **batch,
                do_sample=True,
                temperature=temperature,
                top_p=TOP_P,
                top_k=0,
                max_new_tokens=new_tokens,
                pad_token_id=tokenizer.pad_token_id,
            )
        model.generated_tokens += int((out[:, batch["input_ids"].shape[1] :] != tokenizer.pad_token_id).sum())
