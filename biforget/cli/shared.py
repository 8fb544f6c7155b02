"""What every command shares: the app, the option groups declared once, and the steps that turn parsed
options into a library call and its records into output."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import typer

from biforget import console
from biforget.config import ModelOptions, ProbeConfig, RewriteConfig, SeedsConfig, SynthesizeConfig
from biforget.errors import UsageError
from biforget.records import Record

app = typer.Typer(
    name="biforget",
    help="Forget sets for LLM unlearning, written by the target model itself. Records are JSONL on stdout; "
    "messages and progress go to stderr.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _show_version(value: bool) -> None:
    if value:
        from biforget import __version__

        typer.echo(f"biforget {__version__}", err=True)
        raise typer.Exit(0)


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Print the version (to stderr) and exit."
        ),
    ] = False,
) -> None:
    """Forget sets for LLM unlearning, written by the target model itself.

    Records are JSON lines on stdout; messages and progress go to stderr, so commands pipe into each other.
    """


MODEL_PANEL = "Model"
OUTPUT_PANEL = "Output and settings"

TopicOpt = Annotated[str, typer.Option("--topic", "-t", help='The domain, e.g. "Harry Potter".')]
SeedOpt = Annotated[int, typer.Option(help="Run seed: the same seed and settings give the same records.")]
TopPOpt = Annotated[float, typer.Option(help="Nucleus sampling mass.")]
TemperatureOpt = Annotated[float, typer.Option(help="Sampling temperature.")]
TemperaturesOpt = Annotated[str, typer.Option(help="Comma-separated sampling temperatures.")]
MinWordsOpt = Annotated[int, typer.Option(help="Drop cleaned outputs shorter than this.")]
InputOpt = Annotated[
    str | None,
    typer.Option(
        "--input",
        "-i",
        rich_help_panel=OUTPUT_PANEL,
        help="Read records from FILE ('-' for stdin); default: piped stdin.",
    ),
]


def _option(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


def _model(help: str, *decls: str, **extra: Any) -> Any:
    return typer.Option(*decls, rich_help_panel=MODEL_PANEL, help=help, **extra)


MODEL = (
    _option(
        "model",
        Annotated[
            str,
            _model(
                "'default' (SmolLM2-135M-Instruct, packaged), a local model folder, a .gguf file "
                "or a hub id.",
                "--model",
                "-m",
            ),
        ],
        ModelOptions.model,
    ),
    _option("device", Annotated[str, _model("auto, cpu, cuda or cuda:N.")], ModelOptions.device),
    _option(
        "dtype",
        Annotated[str, _model("auto (float32 on a CPU, 16-bit on a GPU), float32, bfloat16 or float16.")],
        ModelOptions.dtype,
    ),
    _option(
        "quantize",
        Annotated[str, _model("none, 8bit or 4bit (bitsandbytes); a memory option, slower on CPU.")],
        ModelOptions.quantize,
    ),
    _option("batch_size", Annotated[int, _model("Sequences per forward pass.")], ModelOptions.batch_size),
    _option(
        "chat_template",
        Annotated[
            bool,
            _model(
                "Wrap prompts in the model's chat template when it has one.",
                "--chat-template/--no-chat-template",
            ),
        ],
        ModelOptions.chat_template,
    ),
    _option(
        "embedder",
        Annotated[
            str, _model("'default' (all-MiniLM-L6-v2, packaged), a sentence-transformers model, or 'target'.")
        ],
        ModelOptions.embedder,
    ),
    _option(
        "model_arg",
        Annotated[
            list[str] | None,
            _model(
                "Backend setting, validated by the backend that reads it.", "--model-arg", metavar="KEY=VALUE"
            ),
        ],
        None,
    ),
)
INPUT = (
    _option("input", InputOpt, None),
    _option(
        "on_error",
        Annotated[
            str,
            typer.Option(
                rich_help_panel=OUTPUT_PANEL,
                help="fail: stop at a bad input line; skip: count it, warn, go on.",
            ),
        ],
        "fail",
    ),
)
OUTPUT = (
    _option(
        "output",
        Annotated[
            Path | None,
            typer.Option(
                "--output",
                "-o",
                rich_help_panel=OUTPUT_PANEL,
                help="Write records to FILE (flushed per line), not stdout.",
            ),
        ],
        None,
    ),
    _option(
        "resume",
        Annotated[
            bool,
            typer.Option(
                "--resume",
                rich_help_panel=OUTPUT_PANEL,
                help="Continue an interrupted run: keep FILE's records, append only new ones.",
            ),
        ],
        False,
    ),
)
COMMON = (
    _option(
        "config",
        Annotated[
            Path | None,
            typer.Option(
                rich_help_panel=OUTPUT_PANEL,
                help="TOML file with a `defaults` table and one table per command; flags override it.",
            ),
        ],
        None,
    ),
    _option(
        "quiet",
        Annotated[
            bool,
            typer.Option(
                "--quiet",
                "-q",
                rich_help_panel=OUTPUT_PANEL,
                help="No progress or info messages; warnings and errors only.",
            ),
        ],
        False,
    ),
)

Command = TypeVar("Command", bound=Callable[..., None])


def with_options(
    *groups: Sequence[inspect.Parameter], leave_out: Iterable[str] = ()
) -> Callable[[Command], Command]:
    """Append shared option groups to a command's own options, so each is declared once.

    The command reads every value, its own and the shared ones, from `ctx.params`."""
    skipped = set(leave_out)

    def decorate(command: Command) -> Command:
        signature = inspect.signature(command, eval_str=True)
        own = set(signature.parameters)
        shared = [option for group in groups for option in group if option.name not in skipped]

        @functools.wraps(command)
        def run(**values: Any) -> None:
            command(**{name: value for name, value in values.items() if name in own})

        run.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=[*signature.parameters.values(), *shared]
        )
        return run  # type: ignore[return-value]

    return decorate


def begin(ctx: typer.Context) -> dict[str, Any]:
    """The command's parsed options (flags over the config file over the built-in defaults)."""
    values = dict(ctx.params)
    console.set_quiet(bool(values.get("quiet")))
    for name, value in values.items():
        if name not in PATH_OPTIONS:
            for item in value if isinstance(value, list | tuple) else [value]:
                if isinstance(item, str) and not _is_text(item):
                    flag = "--" + name.replace("_", "-")
                    raise UsageError(f"{flag} is not UTF-8 text (it holds bytes no text encodes); retype it")
    return values


# Options that may name a file: a file name need not be text, everything else ends up in records.
PATH_OPTIONS = frozenset({"input", "model", "embedder"})


def _is_text(value: str) -> bool:
    """False for a string with lone surrogates: what Python makes of argv bytes that are not UTF-8."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def model_options(values: Mapping[str, Any]) -> ModelOptions:
    return ModelOptions.from_mapping(values, strict=False)


def on_error(value: str) -> Literal["fail", "skip"]:
    if value not in ("fail", "skip"):
        raise UsageError(f"--on-error must be fail or skip, not {value!r}")
    return "fail" if value == "fail" else "skip"


def emit(
    values: Mapping[str, Any],
    produce: Callable[[console.Tracker, list[Record]], Iterable[Record]],
    settings: SeedsConfig | SynthesizeConfig | ProbeConfig | RewriteConfig,
    *,
    reads: Mapping[str, str | Path | None] | None = None,
    writes: Mapping[str, Path | None] | None = None,
) -> None:
    """Run `produce` into -o FILE or stdout through the library's writer and say what was written."""
    from biforget import api

    output: Path | None = values["output"]
    where = str(output) if output else "stdout"
    with console.tracker() as tracker:
        writer = api.write_records(
            lambda existing: produce(tracker, existing),
            output,
            resume=values["resume"],
            config=settings,
            reads=reads,
            writes=writes,
        )
    done = len(writer.existing_ids)
    console.info(
        f"wrote {writer.written} record(s) to {where}" + (f" ({done} already there)" if done else "")
    )
