"""Just enough PromQL reading to list the metric names an expression selects."""
from __future__ import annotations

import re

KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool",
            "offset", "inf", "nan"}
STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
NAME = re.compile(r"(?<![\w:.])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\()?")


def metric_names(expr: str) -> set[str]:
    """Metric names selected by `expr` (functions, keywords, label names and durations left out)."""
    text = STRINGS.sub('""', expr)
    text = re.sub(r"\{[^}]*\}", "{}", text)        # label matchers
    text = re.sub(r"\[[^\]]*\]", "[]", text)        # range and subquery durations
    text = GROUPING.sub(" ", text)
    names = set()
    for match in NAME.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in KEYWORDS:
            continue
        names.add(name)
    return names


def is_recorded(name: str) -> bool:
    """Recording rules' outputs follow level:metric:operations (they contain a colon)."""
    return ":" in name


SELECTOR = re.compile(r'\{((?:[^{}"]|"(?:[^"\\]|\\.)*")*)\}')
MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')


def selectors(expr: str) -> list[list[tuple[str, str, str]]]:
    """The label matchers of each `{...}` selector in `expr`: [(label, op, value), ...]."""
    return [MATCHER.findall(m.group(1)) for m in SELECTOR.finditer(expr)]


def metric_matchers(expr: str) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """(metric name, its matchers) for every selector of a named metric in `expr`; a bare name
    has no matchers."""
    out = []
    for name in sorted(metric_names(expr)):
        pattern = re.compile(rf"(?<![\w:.]){re.escape(name)}\s*(\{{(?:[^{{}}\"]|\"(?:[^\"\\\\]|\\\\.)*\")*\}})?(?!\s*\()")
        for match in pattern.finditer(expr):
            out.append((name, MATCHER.findall(match.group(1) or "")))
    return out
