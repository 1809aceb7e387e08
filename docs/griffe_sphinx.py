"""A griffe extension for the API pages: the docstrings' Sphinx habits, rendered for mkdocstrings.

- ``:class:`~pkg.Name``` (and ``:meth:``, ``:func:``, ``:attr:``, ``:data:``, ``:mod:``, ``:obj:``,
  ``:exc:``) become cross-references (autorefs' optional ones: plain code where the target has no page);
- ``>>>`` examples become fenced Python code blocks (formatted by ruff at the text column's 80
  characters where a line is longer), and reST literal blocks (a paragraph ending in ``::`` and the
  indented lines after it) fenced code blocks;
- parameters whose names start with ``_`` (SB3's ``_init_setup_model``) leave the signatures.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import textwrap
from typing import Any

import griffe

ROLE = re.compile(r":(?:class|meth|func|attr|data|mod|obj|exc):`(~?)\.?([^`]+?)(?:\(\))?`")
PROMPT = re.compile(r"^(\s*)(>>>|\.\.\.)( |$)")
LITERAL = re.compile(r"^(\s*)(.*?)\s*::$")
WIDTH = 80  # characters of code that fit the text column at 1280 px (tests/test_docs.py)


def _identifier(obj: griffe.Object, target: str) -> str:
    """``target``'s full path: as written when dotted, else a member of ``obj``'s class or module."""
    if "." in target:
        return target
    scope = obj if obj.is_class or obj.is_module else obj.parent
    while scope is not None:
        if target in scope.members:
            return f"{scope.path}.{target}"
        scope = scope.parent
    return target


def _roles(obj: griffe.Object, text: str) -> str:
    def link(match: re.Match[str]) -> str:
        short, target = match.groups()
        label = target.split(".")[-1] if short else target
        return f'<autoref identifier="{_identifier(obj, target)}" optional><code>{label}</code></autoref>'

    return ROLE.sub(link, text)


def _ruff() -> str | None:
    try:
        from ruff.__main__ import find_ruff_bin

        return str(find_ruff_bin())
    except (ImportError, FileNotFoundError):
        return shutil.which("ruff")


def _fit(code: list[str]) -> list[str]:
    """``code`` formatted by ruff at ``WIDTH`` if a line is longer (as written where ruff is missing or
    the code does not parse)."""
    ruff = _ruff() if any(len(line) > WIDTH for line in code) else None
    if ruff is None:
        return code
    command = [ruff, "format", "--isolated", f"--line-length={WIDTH}", "-"]
    result = subprocess.run(command, input="\n".join(code), capture_output=True, text=True)
    return result.stdout.splitlines() if result.returncode == 0 else code


def _examples(text: str) -> str:
    """Wrap each run of ``>>>``/``...`` lines in a fenced code block (prompts removed)."""
    lines, out, block = text.splitlines(), [], []

    def flush() -> None:
        if block:
            out.extend(["", "```python", *_fit(block), "```", ""])
            block.clear()

    for line in lines:
        match = PROMPT.match(line)
        if match:
            block.append(line[match.end() :] if match.group(3) else "")
        else:
            flush()
            out.append(line)
    flush()
    return "\n".join(out)


def _literal_blocks(text: str) -> str:
    """reST's ``text::`` + indented block -> ``text:`` + a fenced code block (``::`` alone: dropped)."""
    lines, out, i = text.splitlines(), [], 0
    while i < len(lines):
        match = LITERAL.match(lines[i])
        i += 1
        if not match:
            out.append(lines[i - 1])
            continue
        indent, lead = match.groups()
        if lead:
            out.append(f"{indent}{lead}:")
        start = i
        while i < len(lines) and (not lines[i].strip() or lines[i].startswith(indent + " ")):
            i += 1
        body = textwrap.dedent("\n".join(lines[start:i])).strip("\n").splitlines()
        out += ["", f"{indent}```", *(indent + line if line else "" for line in body), f"{indent}```", ""]
    return "\n".join(out)


class SphinxDocstrings(griffe.Extension):
    """See the module's docstring."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _roles(obj, _literal_blocks(_examples(obj.docstring.value)))
        if obj.is_function:
            for parameter in list(obj.parameters):
                if parameter.name.startswith("_"):
                    del obj.parameters[parameter.name]
