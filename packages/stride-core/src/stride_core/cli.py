"""The shared shape of every STRIDE CLI: config + options, validation first, one MLflow run, clear errors.

Built on click (the design card's choice): it gives subcommand groups (`stride-data build`, `stride-generate
export`), shell completion (`_STRIDE_TRAIN_COMPLETE=bash_source stride-train`), `--version` and environment
defaults (`--experiment` from `$STRIDE_EXPERIMENT`) without code of our own. Commands run in click's
non-standalone mode so that every entry point returns its exit code: 0, 2 for any user error (printed as one
line), 75 when preempted with the state saved, 130 when interrupted.
"""

from __future__ import annotations

import errno
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import click
from pydantic import BaseModel, ValidationError

from stride_core import __version__
from stride_core.atomic import write_text_atomic
from stride_core.config import (
    StrictConfig,
    describe_validation_error,
    load_yaml_mapping,
    parse_override,
    set_dotted,
    to_yaml,
)
from stride_core.errors import Preempted, StrideError
from stride_core.guards import check_output_apart_from_inputs
from stride_core.tracking import RunContext, check_tracking_store, is_main_process, tracked_run

ConfigT = TypeVar("ConfigT", bound=StrictConfig)

EXIT_USER_ERROR = 2
EXIT_PREEMPTED = 75
"""Stopped by SIGTERM/SIGUSR1 with the state saved: run the same command again (sysexits' EX_TEMPFAIL)."""
EXIT_INTERRUPTED = 130


@dataclass(frozen=True)
class Option:
    """A command-line shortcut for one config field."""

    flag: str
    field: str
    help: str
    type: Callable[[str], Any] = str
    metavar: str | None = None
    repeat: bool = False
    """Whether the flag may be given several times (the field then receives the list of values)."""


@dataclass(frozen=True)
class Tool(Generic[ConfigT]):
    """One CLI: its config model, its options and the function doing the work."""

    name: str
    summary: str
    example: str
    config_model: type[ConfigT]
    run: Callable[[ConfigT, RunContext], None]
    options: tuple[Option, ...] = field(default_factory=tuple)
    output_field: str = "output"

    def output_of(self, config: ConfigT) -> Path:
        value = config
        for key in self.output_field.split("."):
            value = getattr(value, key)
        return Path(str(value))


def _field_default(model: type[BaseModel], dotted: str) -> str:
    """The default of a dotted config field, as shown in --help."""
    *parents, leaf = dotted.split(".")
    current: object = model
    for key in parents:
        info = (
            current.model_fields.get(key)
            if isinstance(current, type) and issubclass(current, BaseModel)
            else None
        )
        if info is None:
            return "?"
        current = info.annotation
    if not (isinstance(current, type) and issubclass(current, BaseModel)) or leaf not in current.model_fields:
        return "?"
    info = current.model_fields[leaf]
    return "required" if info.is_required() else str(info.get_default(call_default_factory=True))


@dataclass(frozen=True)
class Invocation:
    """What one command line asked for, before it is merged into a config."""

    config: Path | None = None
    values: dict[str, Any] = field(default_factory=dict)
    """Shortcut options given, by their dotted config field."""
    overrides: tuple[str, ...] = ()
    """The --set KEY=VALUE texts, in order (later ones win)."""
    dry_run: bool = False
    experiment: str = "stride"


HELP_OPTIONS = ["-h", "--help"]
CONTEXT: dict[str, Any] = {"help_option_names": HELP_OPTIONS, "max_content_width": 110}


def _epilog(example: str) -> str:
    # "\b" keeps click from re-wrapping the example lines into one paragraph.
    return "\b\nexample:\n" + "\n".join(f"  {line}" for line in example.strip().splitlines())


def _param_type(kind: Callable[[str], Any]) -> Any:
    # click.Path completes file names in the shell; int/str/float map to click's own types.
    return click.Path(path_type=Path) if kind is Path else kind


def _with_version(command: click.Command, prog: str) -> click.Command:
    return click.version_option(__version__, "--version", prog_name=prog, message="%(prog)s %(version)s")(
        command
    )


def command(tool: Tool[Any], name: str | None = None, short_help: str | None = None) -> click.Command:
    """The click command of a tool; every option shows its config field and default. Calling it returns the
    exit code (in non-standalone mode, see `invoke`)."""
    shortcuts = {f"opt_{i}": option for i, option in enumerate(tool.options)}
    params: list[click.Parameter] = [
        click.Option(
            ["--config"],
            type=click.Path(path_type=Path, dir_okay=False),
            metavar="YAML",
            help="YAML config file; options override it",
        )
    ]
    for key, option in shortcuts.items():
        default = _field_default(tool.config_model, option.field)
        params.append(
            click.Option(
                [option.flag, key],
                type=_param_type(option.type),
                metavar=option.metavar or option.field.split(".")[-1].upper(),
                multiple=option.repeat,
                default=None,
                help=f"{option.help} (config: {option.field}; default: {default})",
            )
        )
    params += [
        click.Option(
            ["--set", "overrides"],
            multiple=True,
            metavar="KEY=VALUE",
            help="override any config field by dotted key, e.g. --set training.steps=200 (repeatable)",
        ),
        click.Option(["--dry-run"], is_flag=True, help="print the resolved config and exit"),
        click.Option(
            ["--experiment"],
            envvar="STRIDE_EXPERIMENT",
            show_envvar=True,
            default="stride",
            show_default=True,
            help="MLflow experiment name",
        ),
    ]

    def callback(
        config: Path | None, overrides: tuple[str, ...], dry_run: bool, experiment: str, **given: Any
    ) -> int:
        values = {}
        for key, value in given.items():
            if value is None or (shortcuts[key].repeat and not value):
                continue
            values[shortcuts[key].field] = list(value) if shortcuts[key].repeat else value
        return execute(tool, Invocation(config, values, overrides, dry_run, experiment))

    cli = click.Command(
        name or tool.name,
        params=params,
        callback=callback,
        help=tool.summary,
        short_help=short_help,
        epilog=_epilog(tool.example),
        context_settings=CONTEXT,
    )
    return _with_version(cli, tool.name)


class DefaultGroup(click.Group):
    """A group that runs its default command when the first argument names none of its commands, so that
    `stride-generate --checkpoint ...` keeps working beside `stride-generate export ...`."""

    def __init__(self, *args: Any, default: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.default = default

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        eager = {"--version", *HELP_OPTIONS}
        if args and args[0] not in self.commands and args[0] not in eager:
            args = [self.default, *args]
        return super().parse_args(ctx, args)


def group(
    name: str, summary: str, example: str, commands: Sequence[click.Command], default: str | None = None
) -> click.Group:
    """A CLI with several verbs (`stride-data build`); with `default`, arguments without a verb go to it."""
    kwargs: dict[str, Any] = {
        "help": summary,
        "epilog": _epilog(example),
        "context_settings": CONTEXT,
        "commands": list(commands),
    }
    cli = DefaultGroup(name, default=default, **kwargs) if default else click.Group(name, **kwargs)
    _with_version(cli, name)
    return cli


def invoke(cli: click.Command, argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Run a click command and return its exit code; usage errors print one line and return 2. Shell
    completion (`_<PROG>_COMPLETE=bash_source <prog>`) answers and exits before anything runs."""
    prog = prog or cli.name or "stride"
    try:
        code = cli.main(args=None if argv is None else list(argv), prog_name=prog, standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help() if exc.ctx else "", err=True)
        return EXIT_USER_ERROR
    except click.ClickException as exc:
        where = exc.ctx.command_path if isinstance(exc, click.UsageError) and exc.ctx else prog
        print(f"{where}: error: {exc.format_message()} (see {where} --help)", file=sys.stderr)
        return EXIT_USER_ERROR
    except click.Abort:
        print(f"{prog}: interrupted; no partial output was published", file=sys.stderr)
        return EXIT_INTERRUPTED
    return code if isinstance(code, int) else 0


def resolve_config(tool: Tool[ConfigT], args: Invocation) -> ConfigT:
    """Merge the YAML file, the options and the --set overrides, then validate."""
    raw: dict[str, Any] = load_yaml_mapping(args.config) if args.config else {}
    # Where each value came from, so that an error blames the option or --set that gave it, not the file.
    origins: dict[str, str] = {}
    flags = {option.field: option.flag for option in tool.options}
    for dotted, value in args.values.items():
        set_dotted(raw, dotted, str(value) if isinstance(value, Path) else value)
        origins[dotted] = f"option {flags.get(dotted, dotted)}"
    for text in args.overrides:
        dotted, value = parse_override(text)
        set_dotted(raw, dotted, value)
        origins[dotted] = f"--set {text}"
    try:
        return tool.config_model.model_validate(raw)
    except ValidationError as exc:
        source = str(args.config) if args.config else "command line"
        location = [str(part) for part in exc.errors()[0]["loc"]]
        for dotted, origin in sorted(origins.items(), key=lambda item: -len(item[0])):
            if location[: len(dotted.split("."))] == dotted.split("."):
                source = origin
                break
        raise StrideError(describe_validation_error(exc, source, tool.config_model)) from None


def resolved_config_path(output: Path) -> Path:
    """Where the resolved config of a run is written: beside its output."""
    return output.parent / f"{output.name}.resolved.yaml"


def execute(tool: Tool[ConfigT], args: Invocation) -> int:
    """Run a parsed command: validate, dry-run or track and run; map errors to exit codes."""
    try:
        config = resolve_config(tool, args)
        if args.dry_run:
            sys.stdout.write(to_yaml(config))
            return 0
        output = tool.output_of(config)
        check_output_apart_from_inputs(config, tool.output_field)
        if is_main_process():
            check_tracking_store(output)
        config_dump = config.model_dump(mode="json")
        with tracked_run(tool.name, config_dump, output, args.experiment) as run:
            tool.run(config, run)
            if is_main_process():
                config_file = resolved_config_path(output)
                write_text_atomic(config_file, to_yaml(config))
                run.log_artifact(config_file)
        return 0
    except Preempted as exc:
        print(f"{tool.name}: error: {exc}", file=sys.stderr)
        return EXIT_PREEMPTED
    except StrideError as exc:
        print(f"{tool.name}: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        fix = ""
        if exc.errno == errno.ENOSPC:
            # Outputs are published only when complete, so a full disk leaves the old artifact (or none).
            fix = "; nothing was published: free space there or write the output elsewhere, then run again"
        print(f"{tool.name}: error: {where}{exc.strerror or exc}{fix}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"{tool.name}: interrupted; no partial output was published", file=sys.stderr)
        return EXIT_INTERRUPTED


def run_tool(tool: Tool[Any], argv: Sequence[str] | None = None) -> int:
    """Entry point body for a single-command CLI."""
    return invoke(command(tool), argv, tool.name)
