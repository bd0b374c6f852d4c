"""The shared shape of every STRIDE CLI: config + options, validation first, one MLflow run, clear errors."""

from __future__ import annotations

import argparse
import errno
import os
import sys
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

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


def build_parser(tool: Tool[Any], parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """Build (or fill) the argparse parser for a tool; every option shows its config field and default."""
    if parser is None:
        parser = argparse.ArgumentParser(prog=tool.name)
    parser.description = tool.summary
    parser.epilog = "example:\n" + textwrap.indent(tool.example.strip(), "  ")
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--config", type=Path, metavar="YAML", help="YAML config file; options override it")
    for option in tool.options:
        default = _field_default(tool.config_model, option.field)
        parser.add_argument(
            option.flag,
            dest=f"opt:{option.field}",
            type=option.type,
            metavar=option.metavar or option.field.split(".")[-1].upper(),
            action="append" if option.repeat else "store",
            default=None,
            help=f"{option.help} (config: {option.field}; default: {default})",
        )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any config field by dotted key, e.g. --set training.steps=200 (repeatable)",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    parser.add_argument(
        "--experiment",
        default=os.environ.get("STRIDE_EXPERIMENT", "stride"),
        help="MLflow experiment name (default: $STRIDE_EXPERIMENT or %(default)s)",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def resolve_config(tool: Tool[ConfigT], args: argparse.Namespace) -> ConfigT:
    """Merge the YAML file, the options and the --set overrides, then validate."""
    raw: dict[str, Any] = load_yaml_mapping(args.config) if args.config else {}
    # Where each value came from, so that an error blames the option or --set that gave it, not the file.
    origins: dict[str, str] = {}
    flags = {option.field: option.flag for option in tool.options}
    for key, value in vars(args).items():
        if key.startswith("opt:") and value is not None:
            dotted = key.removeprefix("opt:")
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


def execute(tool: Tool[ConfigT], args: argparse.Namespace) -> int:
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
    args = build_parser(tool).parse_args(argv)
    return execute(tool, args)
