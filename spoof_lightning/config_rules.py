"""How a config check is written: a :class:`Rule` per key (the accepted values, in words,
and a test), its usual kinds, and the functions that turn a config section into one problem
line per refused or unknown key (``data.batch_size must be an integer >= 1, got -4``).
:mod:`spoof_lightning.config_checks` holds the project's rules.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import InterpolationResolutionError, MissingMandatoryValue

from spoof_lightning.errors import ConfigError


@dataclass(frozen=True)
class Rule:
    """Accepted values of one key: ``accepted`` in words, ``test`` the check."""

    accepted: str
    test: Callable[[Any], bool]


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _rule(accepted: str, test: Callable[[Any], bool], optional: bool) -> Rule:
    """``accepted`` / ``test``, and null too when ``optional``."""
    if optional:
        return Rule(f"{accepted} or null", lambda v: v is None or test(v))
    return Rule(accepted, test)


def integer(minimum: int, optional: bool = False) -> Rule:
    return _rule(f"an integer >= {minimum}", lambda v: is_int(v) and v >= minimum, optional)


def number(low: float, strict: bool = False, optional: bool = False) -> Rule:
    above = (lambda v: v > low) if strict else (lambda v: v >= low)
    words = f"a number {'>' if strict else '>='} {low}"
    return _rule(words, lambda v: is_number(v) and above(v), optional)


def choice(*values: Any, optional: bool = False) -> Rule:
    return _rule(f"one of {values}", lambda v: isinstance(v, str) and v in values, optional)


def flag(optional: bool = False) -> Rule:
    return _rule("true or false", lambda v: isinstance(v, bool), optional)


def text(optional: bool = False) -> Rule:
    return _rule("a string", lambda v: isinstance(v, str), optional)


def plain(node: Any) -> Any:
    """A config node as plain (resolved) data; any other value as it is."""
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def plain_values(
    section: Any, keys: Sequence[str] | None = None
) -> tuple[dict[str, Any], list[str]]:
    """``(values, missing keys)`` of a config section (or of its ``keys``), resolved key by key.

    Keys that cannot be resolved here (e.g. Hydra's run directory outside a Hydra run) are
    left out: they are no value to judge; mandatory keys left at ``???`` are listed.
    """
    if not isinstance(section, DictConfig):
        return dict(section or {}), []
    values, missing = {}, []
    for key in section if keys is None else [k for k in keys if k in set(section.keys())]:
        if OmegaConf.is_missing(section, key):
            missing.append(str(key))
            continue
        try:
            values[str(key)] = plain(section[key])
        except (InterpolationResolutionError, MissingMandatoryValue):
            continue
    return values, missing


def show(value: Any) -> str:
    """A value as a problem line quotes it (strings in quotes)."""
    return repr(value) if isinstance(value, str) else str(value)


def rule_problems(
    values: Mapping[str, Any], rules: Mapping[str, Rule], prefix: str, skip_null: bool = False
) -> list[str]:
    """``<prefix>.<key> must be <accepted>, got <value>`` for each value its rule refuses."""
    return [
        f"{prefix}{key} must be {rule.accepted}, got {show(values[key])}"
        for key, rule in rules.items()
        if key in values and not (skip_null and values[key] is None) and not rule.test(values[key])
    ]


def unknown_keys(
    values: Mapping[str, Any], known: Sequence[str], prefix: str, what: str
) -> list[str]:
    """A problem for each key of ``values`` not in ``known``, with the closest known names."""
    problems = []
    for key in values:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=3)
            hint = f" (did you mean {' or '.join(close)}?)" if close else ""
            problems.append(f"{prefix}{key} is not {what}{hint}")
    return problems


def raise_problems(problems: Sequence[str], where: str) -> None:
    """One :class:`ConfigError` paragraph listing every problem, if any."""
    if problems:
        raise ConfigError(f"invalid {where} config: " + "; ".join(problems) + ".")
