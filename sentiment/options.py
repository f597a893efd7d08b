"""Config fields: each with its default, its --help text and the values it takes, all checked in one place; and
the command line made from a dataclass of them (one --flag per field)."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from typing import Any

from sentiment.errors import SentimentError


def flag_name(field_name: str) -> str:
    """The command-line spelling of a config field: learning_rate -> --learning-rate."""
    return "--" + field_name.replace("_", "-")


@dataclass(frozen=True)
class Range:
    """The numbers a field takes: a lower and an upper bound (None: none), each included unless marked open."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value: float) -> bool:
        above = self.low is None or (value > self.low if self.low_open else value >= self.low)
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return above and below

    def __str__(self) -> str:
        if self.high is None:
            return f"{'more than' if self.low_open else 'at least'} {self.low}"
        return f"in {'(' if self.low_open else '['}{self.low}, {self.high}{')' if self.high_open else ']'}"


NON_NEGATIVE, AT_LEAST_ONE = Range(0), Range(1)
SAMPLE_SIZE = Range(2)  # a stratified sample holds a review of each label
SEED_RANGE = Range(0, 2**32 - 1)  # what numpy and scikit-learn take
SHARE, OPEN_SHARE = Range(0.0, 1.0, high_open=True), Range(0.0, 1.0, low_open=True, high_open=True)


def option(default: Any, help: str, shapes_run: bool = False, choices: tuple | None = None,  # noqa: A002 - argparse's
           valid: Range | None = None) -> Any:
    """A config field: its default, its --help text, whether it shapes a training run (a checkpoint made with
    another value of it cannot be resumed), and the values it takes (`choices`, or numbers in `valid`; None is
    always allowed where the default is None)."""
    return field(default=default, metadata={"help": help, "shapes_run": shapes_run, "choices": choices,
                                            "valid": valid})


def shaping(default: Any, help: str, **checks: Any) -> Any:  # noqa: A002
    """An `option` that shapes a training run."""
    return option(default, help, shapes_run=True, **checks)


def check_fields(config: Any) -> None:
    """Every field's value against its `choices` or `valid` range; the error names the flag."""
    for f in dataclasses.fields(config):
        value, choices, valid = getattr(config, f.name), f.metadata.get("choices"), f.metadata.get("valid")
        if value is None and f.default is None:
            continue
        if choices is not None and value not in choices:
            raise SentimentError(f"{flag_name(f.name)}: must be one of {', '.join(choices)}, not {value!r}")
        if valid is not None and value not in valid:
            raise SentimentError(f"{flag_name(f.name)}: must be {valid}, not {value}")


def is_switch(f: dataclasses.Field) -> bool:
    """Whether a field's flag is an on/off switch (--progress / --no-progress) rather than one taking a value."""
    return f.type in ("bool", bool)


def add_arguments(parser: argparse.ArgumentParser, cls: type) -> None:
    """One --flag per dataclass field, its help taken from the field."""
    for f in dataclasses.fields(cls):
        flag = flag_name(f.name)
        help_text = f.metadata['help']  # its default appended, unless it states one or there is none to state
        if f.default is not None and "default" not in help_text:
            help_text += f" (default: {f.default})"
        if is_switch(f):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default, help=help_text)
            continue
        kind = {"int": int, "float": float, "str": str, "int | None": int, "float | None": float,
                "str | None": str}[str(f.type)]
        choices = f.metadata.get("choices")  # shown, not enforced here: check_fields gives one clear error line
        parser.add_argument(flag, type=kind, default=f.default, help=help_text,
                            metavar="{" + ",".join(choices) + "}" if choices else f.name.upper())


def from_namespace(args: argparse.Namespace, cls: type) -> Any:
    return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls)})
