"""Point parsing on what the default model really writes for short lists (issue 24): the raw completions
of the seeds stage's own prompts, written by benchmarks/point_lists.py (the command of each is in the
fixture), parsed and replayed through the seeds pipeline."""

from __future__ import annotations

import json
from pathlib import Path

from biforget.config import SeedsConfig
from biforget.pipelines.seeds import generate_points, load_seed_templates
from biforget.records import derive_seed
from biforget.text import parse_point_list
from tests.scripted import HashEmbedder, ScriptedModel

FIXTURE = Path(__file__).parent / "fixtures" / "smollm2_short_point_lists.json"
ENTRIES: list[dict[str, object]] = json.loads(FIXTURE.read_text(encoding="utf-8"))
TOPIC = "Harry Potter"
# `seeds --count 3 --depth 1 --max-new-tokens 48 --seed 5`, which gave the one point "Harry".
SEEDS_48 = f'biforget seeds --topic "{TOPIC}" --count 3 --depth 1 --max-new-tokens 48 --seed 5'


def outputs(command: str, prompt_start: str = "Give a numbered list") -> list[str]:
    return [
        str(e["output"])
        for e in ENTRIES
        if e["command"] == command and str(e["prompt"]).startswith(prompt_start)
    ]


def test_fixture_is_real_output_of_the_seeds_prompts() -> None:
    root, child = load_seed_templates()
    assert {e["model"] for e in ENTRIES} == {"SmolLM2-135M-Instruct"}
    for entry in ENTRIES:
        count, prompt = int(str(entry["count"])), str(entry["prompt"])
        if "key topics" in prompt:
            # The exact prompt the root template renders, with the seed the pipeline derives for it.
            assert prompt == root.render(topic=TOPIC, count=count, point="")
            assert entry["request_seed"] == derive_seed(int(str(entry["seed"])), "seeds", 0, None)
        else:
            point = prompt.split(" subtopics of ", 1)[1].split(f" (from {TOPIC})", 1)[0]
            assert prompt == child.render(topic=TOPIC, count=count, point=point)


def test_topic_as_a_label_gives_the_names_after_it() -> None:
    # "1. Harry Potter: The Eye of Hora, a series of ...": the topic is a label, the name follows it.
    first, _ = outputs(SEEDS_48, "Give a numbered list of 3 key topics")
    assert first.startswith("Here are three key topics of Harry Potter:\n\n1. Harry Potter: The Eye of Hora")
    assert parse_point_list(first) == ["Harry Potter"]
    assert parse_point_list(first, labels=(TOPIC,)) == ["The Eye of Hora", "A Christmas Tale"]


def test_a_last_line_cut_by_the_token_limit_is_not_a_point() -> None:
    _, second = outputs(SEEDS_48, "Give a numbered list of 3 key topics")
    assert second.endswith("\n- Harry Potter\n- Harry")
    assert parse_point_list(second, labels=(TOPIC,)) == ["Harry Potter"]
    assert "Harry" not in parse_point_list(second)


def replay(command: str) -> ScriptedModel:
    """The default model's recorded completions, by prompt and draw."""
    by_prompt: dict[tuple[str, int], str] = {
        (str(e["prompt"]), int(str(e["draw"]))): str(e["output"]) for e in ENTRIES if e["command"] == command
    }
    return ScriptedModel(lambda prompt, draw, seed: by_prompt.get((prompt, draw), ""))


def test_the_issue_run_lists_real_points_not_a_cut_off_word() -> None:
    # The top level of the run that gave ["Harry"]; depth 0, as its level 1 expanded that word.
    config = SeedsConfig(topic=TOPIC, count=3, depth=0, max_new_tokens=48, seed=5)
    records = list(generate_points(replay(SEEDS_48), HashEmbedder(), config))
    assert [r["text"] for r in records] == ["The Eye of Hora", "A Christmas Tale"]


OLDER = json.loads((FIXTURE.parent / "smollm2_point_lists.json").read_text(encoding="utf-8"))


def test_a_description_after_the_label_is_not_taken_for_a_name() -> None:
    # Real outputs of the same model: "Photosynthesis: The process of converting light energy ..." and
    # "Harry Potter - a wise and unbeatable wizard" describe the label; they name nothing after it.
    photosynthesis = str(OLDER[4]["output"])
    assert "1. Photosynthesis: The process of converting light energy" in photosynthesis
    assert parse_point_list(photosynthesis, labels=("Photosynthesis",)) == [
        "Photosynthesis",
        "Carbon dioxide",
        "Oxygen",
        "Photosynthetic processes",
    ]
    wizard = str(OLDER[0]["output"])
    assert wizard.startswith("1. Harry Potter - a wise and unbeatable wizard")
    assert parse_point_list(wizard, labels=(TOPIC,)) == ["Harry Potter", "the magical realm of wiziuns"]
