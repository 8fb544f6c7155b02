"""Stage I generation speed: the original scripts' loop, biforget's synthesis path, plain batched generate.

Same model, same prompts, same number of new tokens, one run, generated tokens counted (padding and
end-of-sequence excluded). Prints tokens/s for each path and the ratios the project targets:
biforget / one-at-a-time >= 5, biforget within 10% of plain batched generate. Beside them, the wall-time
ratios for the same prompts, which do not move with how long the sampled texts happen to run.

    python benchmarks/generation.py                 # 64 prompts x 64 new tokens, default model
    python benchmarks/generation.py --prompts 16    # a quicker look
"""

from __future__ import annotations

import argparse
import json
import sys

import torch
from reference import POINTS, TOP_P, plain_batched, timed

from biforget.config import ModelOptions, SynthesizeConfig
from biforget.models import load_embedder, load_text_model
from biforget.models.base import GenerationRequest
from biforget.models.hf import HFTextModel
from biforget.pipelines.synthesize import plan_units, select_templates, synthesize_samples
from biforget.records import make_record


def build_points(count: int) -> list[dict[str, object]]:
    texts = [
        POINTS[i % len(POINTS)] + ("" if i < len(POINTS) else f" ({i // len(POINTS) + 1})")
        for i in range(count)
    ]
    return [
        make_record(
            kind="point", text=t, topic="Harry Potter", parent=None, stage="seeds", gen={}, origin={"i": i}
        )
        for i, t in enumerate(texts)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="default")
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=ModelOptions.batch_size)
    parser.add_argument("--temperature", type=float, default=0.8)
    args = parser.parse_args()

    options = ModelOptions(model=args.model, batch_size=args.batch_size)
    model = load_text_model(options)
    assert isinstance(model, HFTextModel)
    embedder = load_embedder(options)
    templates = select_templates(["info", "qa"])
    # One template per prompt keeps exactly `--prompts` prompts: points x templates.
    points = build_points(max(1, args.prompts // len(templates)))
    settings = SynthesizeConfig(
        topic="Harry Potter",
        temperatures=(args.temperature,),
        samples=1,
        rounds=1,
        max_new_tokens=args.new_tokens,
        check_every=10**9,
        max_samples=10**9,
        min_words=1,
        seed=0,
    )
    units = plan_units(points, templates, settings)[: args.prompts]
    prompts = [u.template.render(point=u.point["text"], topic="Harry Potter") for u in units]
    print(
        f"{len(prompts)} prompts x {args.new_tokens} new tokens, model {model.name}, "
        f"batch size {args.batch_size}, torch threads {torch.get_num_threads()}",
        file=sys.stderr,
    )

    def one_at_a_time() -> None:
        for index, prompt in enumerate(prompts):
            model.generate(
                [
                    GenerationRequest(
                        prompt=prompt,
                        temperature=args.temperature,
                        top_p=TOP_P,
                        max_new_tokens=args.new_tokens,
                        seed=index,
                    )
                ]
            )

    def synthesis_path() -> None:
        list(synthesize_samples(model, embedder, points, settings))

    model.generate(  # warm-up
        [
            GenerationRequest(prompt=p, temperature=args.temperature, top_p=TOP_P, max_new_tokens=4)
            for p in prompts[:2]
        ]
    )
    results = {
        "a_one_at_a_time": timed("(a) one generate call per prompt", model, one_at_a_time),
        "b_biforget": timed("(b) biforget synthesis path", model, synthesis_path),
        "c_plain_batched": timed(
            "(c) plain batched generate",
            model,
            lambda: plain_batched(model, prompts, args),
        ),
    }
    a, b, c = (results[k]["tokens_per_s"] for k in ("a_one_at_a_time", "b_biforget", "c_plain_batched"))
    ratios = {"b_over_a": b / a, "b_over_c": b / c}
    print(
        f"b/a = {ratios['b_over_a']:.2f} (target >= 5), b/c = {ratios['b_over_c']:.2f} (target >= 0.9)",
        file=sys.stderr,
    )
    # Tokens/s moves with how long the sampled texts happen to run (a batch steps until its longest row
    # ends), so the wall time for the same prompts and budget is printed beside it.
    seconds = {k: results[k]["seconds"] for k in results}
    ratios["speedup_b_over_a"] = seconds["a_one_at_a_time"] / seconds["b_biforget"]
    ratios["speedup_b_over_c"] = seconds["c_plain_batched"] / seconds["b_biforget"]
    print(
        f"same prompts, wall time: a/b = {ratios['speedup_b_over_a']:.2f}, "
        f"c/b = {ratios['speedup_b_over_c']:.2f}",
        file=sys.stderr,
    )
    print(
        json.dumps(
            {
                "prompts": len(prompts),
                "new_tokens": args.new_tokens,
                "batch_size": args.batch_size,
                **results,
                **ratios,
            }
        )
    )


if __name__ == "__main__":
    main()
