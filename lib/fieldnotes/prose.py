"""The book's claims about itself, checked: figures in the prose are glued from the run or quoted.

A markdown cell may show a measured figure only through a glue role (``{glue:text}`name:.1%```),
whose value the executed notebook carries. A figure taken from a source — the post's 250 s, the
ZeRO paper's 120 GB — stays as text and is listed once in the notebook's metadata::

    "metadata": {"fieldnotes": {"quoted": [{"figure": "250 s", "source": "post"}]}}

where ``source`` is ``"post"`` or a key of ``book/references.bib``. :func:`typed_figures` finds
every measured-looking figure that is neither; :func:`glue_problems` finds glue roles that an
executed notebook cannot fill.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

from fieldnotes.book import GLUE_KIND, GLUE_PREFIX

#: Sources a quoted figure may cite besides the bibliography.
POST = "post"

_NUMBER = r"(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
_UNIT = (
    r"(?:%|‰|°|×(?!\s?\d)|x(?![\w\d])|"
    r"(?:ms|µs|us|ns|s|sec|secs|seconds?|milli(?:second)?s?|microseconds?|nanoseconds?|"
    r"min|mins|minutes?|h|hrs?|hours?|"
    r"m/s|km/h|rad/s|mm|cm|km|m|k?Hz|"
    r"[kKMGTP]i?B|bytes|pts?|points?|million|billion|trillion|[kMB])(?![\w]))"
)
#: A number joined to a time unit by a hyphen: "a 250-second run".
_HYPHENATED = r"-(?:milli)?(?:second|minute|hour)s?\b"
_DASH = r"\s?[–\-−]\s?"
_SPACE = r"[ \u00a0\u202f]?"
#: A number (optionally a range) followed by a unit, or a bare decimal / thousands-separated number.
FIGURE = re.compile(
    rf"(?<![\w.,]){_NUMBER}(?:{_DASH}{_NUMBER})?(?:{_SPACE}{_UNIT}|{_HYPHENATED})"
    rf"|(?<![\w.,])(?:\d{{1,3}}(?:,\d{{3}})+(?:\.\d+)?|\d+\.\d+)(?![\w.]*\d)"
)
#: A decimal inside math, or math ending in a number and followed by a unit ("$= 120$ GB").
_MATH_DECIMAL = re.compile(r"(?<![\w.])\d+\.\d+(?![\d.])")
_MATH_THEN_UNIT = re.compile(rf"\$[^$]*?(?<![\^_{{\d.,])({_NUMBER})\s*\${_SPACE}({_UNIT})")

_GLUE_ROLE = re.compile(r"\{glue(?::(\w+))?\}`([^`]*)`")
_STRIP = [
    re.compile(p, re.S)
    for p in (
        r"<!--.*?-->",  # HTML comments
        r"```.*?```",  # fenced code (directives such as {dropdown} are re-scanned below)
        r"\{glue(?::\w+)?\}`[^`]*`",  # glue roles: the figure comes from the run
        r"\{(?:cite|cite:\w+|ref|numref|doc|eq)\}`[^`]*`",  # cross-references and citations
        r"`[^`]*`",  # inline code
        r"https?://\S+",  # URLs
        r"\]\([^)]*\)",  # link targets
    )
]
#: A code span holding only a figure ("`0.922`", "`92.2 %`"): scanned as prose, not as code.
_FIGURE_SPAN = re.compile(rf"(?<![`}}])`\s*({_NUMBER}(?:{_SPACE}{_UNIT})?)\s*`(?!`)")
_MATH = re.compile(r"\$\$.*?\$\$|\$[^$\n]*\$", re.S)
_DIRECTIVE = re.compile(r"```+\s*\{[\w-]+\}[^\n]*\n(.*?)```+", re.S)


@dataclass(frozen=True)
class Finding:
    """A figure typed into notebook prose: which notebook, which cell (0-based) and what."""

    notebook: str
    cell: int
    figure: str

    def __str__(self) -> str:
        return f"{self.notebook}, cell {self.cell}: {self.figure!r}"


def _normal(figure: str) -> str:
    """A figure without its spaces (so '40 GB', '40GB' and '40\u202fGB' are one figure)."""
    return re.sub(r"\s", "", figure)


def figures_in_markdown(text: str) -> list[str]:
    """Measured-looking figures in one markdown cell, outside glue roles, code, links and citations.

    Prose inside directive blocks (``{dropdown}``, ``{note}``) counts as prose, and so does a code
    span that holds nothing but a figure (`` `0.922` ``). Inside math only decimals count, plus
    math ending in a number and followed by a unit; formula constants do not.
    """
    text = _FIGURE_SPAN.sub(lambda m: f" {m.group(1)} ", text)
    bodies = [m.group(1) for m in _DIRECTIVE.finditer(text)]
    found: list[str] = []
    for body in [text, *bodies]:
        for rx in _STRIP:
            body = rx.sub(" ", body)
        found += [f"{m.group(1)} {m.group(2)}" for m in _MATH_THEN_UNIT.finditer(body)]
        for math in _MATH.findall(body):
            found += _MATH_DECIMAL.findall(math)
        body = _MATH.sub(" ", body)
        found += [m.group(0).strip() for m in FIGURE.finditer(body)]
    return found


def quoted(nb, bib_keys: set[str]) -> set[str]:
    """The notebook's quoted figures (normalised), validated against ``bib_keys`` and ``"post"``."""
    entries = nb.metadata.get("fieldnotes", {}).get("quoted", [])
    if not isinstance(entries, list):
        raise ValueError("metadata fieldnotes.quoted must be a list of {figure, source} objects")
    out = set()
    for i, e in enumerate(entries):
        if not isinstance(e, dict) or not e.get("figure") or not e.get("source"):
            raise ValueError(f"fieldnotes.quoted[{i}] = {e!r}; expected {{figure, source}}")
        if e["source"] != POST and e["source"] not in bib_keys:
            raise ValueError(
                f"fieldnotes.quoted[{i}] cites {e['source']!r}, which is neither "
                f"{POST!r} nor a key of book/references.bib"
            )
        out.add(_normal(str(e["figure"])))
    return out


def bib_keys(bib: Path) -> set[str]:
    """The entry keys of a BibTeX file."""
    return set(re.findall(r"@\w+\s*\{\s*([^,\s]+)\s*,", Path(bib).read_text()))


def typed_figures(path: Path, bib: set[str]) -> list[Finding]:
    """Every figure in ``path``'s markdown that is neither glued nor in its quoted list."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    allowed = quoted(nb, bib)
    return [
        Finding(Path(path).stem, i, f)
        for i, text in _prose_of(nb)
        for f in figures_in_markdown(text)
        if _normal(f) not in allowed
    ]


def _prose_of(nb) -> list[tuple[int, str]]:
    """(cell index, text) of everything a reader reads: markdown cells, figure captions, alt text."""
    texts = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            texts.append((i, cell.source))
        meta = cell.get("metadata", {}).get("mystnb", {})
        for part, key in (("figure", "caption"), ("image", "alt")):
            if isinstance(meta.get(part), dict) and meta[part].get(key):
                texts.append((i, str(meta[part][key])))
    return texts


def unused_quotes(path: Path) -> list[str]:
    """Quoted figures that no figure in ``path``'s prose contains any more (stale entries).

    A quote counts as used when it is part of a figure the prose shows, so "11.4" stays listed
    beside "11.4 M" for scanners that read the number without its unit.
    """
    import nbformat

    nb = nbformat.read(path, as_version=4)
    shown = [_normal(f) for _, text in _prose_of(nb) for f in figures_in_markdown(text)]
    entries = nb.metadata.get("fieldnotes", {}).get("quoted", [])
    return [
        str(e["figure"])
        for e in entries
        if not any(_normal(str(e["figure"])) in figure for figure in shown)
    ]


def glue_references(text: str) -> list[tuple[str, str, str]]:
    """Glue roles in a markdown cell as (role, key, format spec); role '' is plain ``{glue}``."""
    refs = []
    for role, content in _GLUE_ROLE.findall(text):
        key, _, fmt = content.partition(":")
        refs.append((role, key.strip(), fmt.strip()))
    return refs


@dataclass(frozen=True)
class Glued:
    """One glued value in an executed notebook: its text/plain form and whether it is a time."""

    text: str
    wall_time: bool


def glued_values(nb) -> dict[str, Glued]:
    """Every value glued in an executed notebook (``nb`` is an nbformat node), by name."""
    values = {}
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            meta = out.get("metadata", {})
            name = meta.get("scrapbook", {}).get("name")
            text = out.get("data", {}).get(GLUE_PREFIX + "text/plain")
            if name is not None and text is not None:
                values[name] = Glued(text, bool(meta.get(GLUE_KIND, {}).get("wall_time")))
    return values


def _formats(text: str, fmt: str) -> bool:
    """Whether myst-nb's ``{glue:text}`` can apply format spec ``fmt`` to ``text``."""
    from myst_nb.core.variables import format_plain_text

    try:
        format_plain_text(text, fmt or "s")
    except (TypeError, ValueError):
        return False
    return not (fmt == "" and _is_float_text(text))


def _is_float_text(text: str) -> bool:
    try:
        return isinstance(ast.literal_eval(text), float)
    except (SyntaxError, ValueError):
        return False


def glue_problems(executed: Path) -> list[str]:
    """Glue roles in an executed notebook that would render blank or raw: unknown key, a role
    other than ``glue:text``, a format the value cannot take, or a float with no format spec."""
    import nbformat

    nb = nbformat.read(executed, as_version=4)
    values = glued_values(nb)
    problems = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue
        for role, key, fmt in glue_references(cell.source):
            where = f"{Path(executed).stem}, cell {i}: {{glue:{role}}}`{key}`"
            if role != "text":
                problems.append(f"{where} uses {{glue:{role}}}; the book pastes with {{glue:text}}")
            elif key not in values:
                problems.append(f"{where} names a value the notebook never glued")
            elif not _formats(values[key].text, fmt):
                problems.append(
                    f"{where}: format {fmt!r} does not fit the value {values[key].text}"
                    + (" (floats need a format spec such as :.1f)" if not fmt else "")
                )
    return problems
