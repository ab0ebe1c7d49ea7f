"""Where CDM locations point: corpus paths, model.json URLs, glob and regex partition patterns."""

from __future__ import annotations

import contextlib
import functools
import math
import posixpath
import re
import re._parser as sre  # the stdlib's own regex parser: the only exact way to see nesting
from collections.abc import Iterator
from urllib.parse import unquote, urlsplit

# Longer paths are never tested against a pattern: it bounds the cost of any backtracking.
MAX_MATCHED_PATH = 1024
# Backtracking may try about C(n + d, d) ways of sharing a path of n characters among the d
# variable repeats of a pattern (.*.*.*x): a path is tested only if that stays in budget, and
# a pattern with so many repeats that even paths this short would not is refused.
MATCH_BUDGET = 10**8
MIN_MATCHED_PATH = 64

_NAMESPACE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_REPEATS = (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT)


def split_namespace(location: str) -> tuple[str | None, str]:
    """('local', '/x') for 'local:/x'; (None, 'x') when the location names no adapter."""
    found = _NAMESPACE.match(location)
    if not found:
        return None, location
    return found.group(1).lower(), location[found.end() :]


def resolve_path(path: str, folder: str, corpus_root: str) -> str:
    """A corpus path made relative to the source root; ValueError when it climbs out of it.

    A leading '/' is the corpus root (the folder of the manifest being loaded), as when the
    object model's adapter is mounted on that folder; anything else is relative to `folder`.
    """
    path = path.replace("\\", "/")
    base = corpus_root if path.startswith("/") else folder
    parts: list[str] = [p for p in base.split("/") if p]
    for part in path.split("/"):
        if part == "..":
            if not parts:
                raise ValueError(f"location {path!r} escapes the source root")
            parts.pop()
        elif part and part != ".":
            parts.append(part)
    return "/".join(parts)


def document_candidates(path: str, folder: str, corpus_root: str) -> Iterator[str]:
    """Where an entity document or import may be, most literal first; ValueError when the
    path itself climbs out of the source.

    Exports are often copied out of the corpus they were written in, so an absolute path
    like /clickstream/_allImports.cdm.json may carry folders that are no longer above it:
    its tail is also tried from the corpus root and from each folder above that.
    """
    yield resolve_path(path, folder, corpus_root)
    path = path.replace("\\", "/")
    if not path.startswith("/"):
        return
    segments = [s for s in path.split("/") if s]
    bases = [corpus_root]
    while bases[-1]:
        bases.append(posixpath.dirname(bases[-1]))
    for start in range(len(segments)):
        for base in bases:
            with contextlib.suppress(ValueError):
                yield resolve_path("/".join(segments[start:]), base, base)


def url_location(url: str, folder: str) -> str | None:
    """Best guess of the source path a model.json partition URL names, before any listing;
    None when the URL names no file.

    The blob name from the model.json folder's name on; the whole blob name when that folder
    does not appear in it (the source root is then taken to be the container).
    """
    blob = _blob_segments(url)
    mine = tuple(folder.split("/")) if folder else ()
    for start in range(len(blob) - len(mine), -1, -1):
        if mine and blob[start : start + len(mine)] == mine:
            return "/".join(blob[start:])
    return "/".join(blob) or None


def url_covers(url: str, folder: str, path: str) -> bool:
    """Whether the file at `path` is the blob a model.json partition URL names.

    The URL's path must end with the file's path below the model.json folder, segment by
    segment, with that folder's own path right before it: a URL into another folder or
    container never matches, while an export root below the container root still does.
    """
    if not relative_to(path, folder):
        return False
    mine = tuple(path.split("/"))
    blob = _blob_segments(url)
    return len(blob) >= len(mine) and blob[len(blob) - len(mine) :] == mine


def _blob_segments(url: str) -> tuple[str, ...]:
    """URL-decoded blob name segments: without the container, which is the first path segment
    unless the host names it (abfss://container@account/...)."""
    parts = urlsplit(url)
    segments = tuple(unquote(s) for s in parts.path.split("/") if s)
    return segments if "@" in parts.netloc else segments[1:]


def relative_to(path: str, folder: str) -> str | None:
    """`path` relative to `folder`, or None when it lies outside it."""
    if not folder:
        return path
    prefix = folder + "/"
    return path[len(prefix) :] if path.startswith(prefix) else None


def relative_location(path: str, root: str) -> str:
    """A source path as seen from `root`, '/'-separated, no leading '/'."""
    return posixpath.relpath(path, root) if root else path


def glob_to_regex(pattern: str) -> str:
    """The object model's glob translation, character for character (its quirks included:
    only '.' is escaped, so '(' or '+' keep their regex meaning)."""
    out = ["[/\\\\]"]
    i = 1 if pattern[:1] in ("/", "\\") else 0
    while i < len(pattern):
        char = pattern[i]
        if char == "*" and pattern[i + 1 : i + 2] == "*":
            piece, i = _globstar(pattern, i)
            out.append(piece)
            continue
        out.append({".": "\\.", "\\": "[/\\\\]", "?": ".", "*": "[^/\\\\]*"}.get(char, char))
        i += 1
    return "".join(out)


def _globstar(pattern: str, i: int) -> tuple[str, int]:
    """The regex for the '**' at `i`, and the index after what it consumed."""
    before = pattern[i - 1] if i > 0 else None
    after = pattern[i + 2] if i + 2 < len(pattern) else None
    separators = (None, "/", "\\")
    if before not in separators or after not in separators:
        return "[^/\\\\]*", i + 2
    if before is not None and after is not None:
        # '/**/' may match no folder at all, so the second slash becomes optional.
        return ".*/?", i + 3
    return ".*", i + 2


@functools.lru_cache(maxsize=512)
def compile_pattern(glob: str | None, regular_expression: str | None) -> re.Pattern[str]:
    """The regex a pattern matches paths with; ValueError naming what is wrong with it."""
    use_glob = bool(glob and not glob.isspace())
    if not use_glob and regular_expression is None:
        raise ValueError("partition pattern has neither globPattern nor regularExpression")
    source = glob_to_regex(glob) if use_glob else regular_expression
    what = f"globPattern {glob!r}" if use_glob else f"regularExpression {regular_expression!r}"
    try:
        compiled = re.compile(source)
        tree = sre.parse(source)
    except re.error as e:
        raise ValueError(f"{what} does not compile: {e}") from None
    if _nested_repeat(tree, inside=False):
        raise ValueError(f"{what}: regularExpression may take exponential time")
    if _longest_path(source) < MIN_MATCHED_PATH:
        raise ValueError(f"{what}: too many variable repeats, matching may take for ever")
    return compiled


def _variable_repeats(items: object) -> int:
    """How many repeats of the parsed regex match a variable number of times (*, +, ?, {m,n})."""
    if isinstance(items, sre.SubPattern):
        items = items.data
    if not isinstance(items, (list, tuple)):
        return 0
    count = 0
    for item in items:
        if isinstance(item, tuple) and len(item) == 2 and any(item[0] is op for op in _REPEATS):
            low, high, body = item[1]
            count += (low != high) + _variable_repeats(body)
        elif isinstance(item, (list, tuple, sre.SubPattern)):
            count += _variable_repeats(item)
    return count


@functools.lru_cache(maxsize=512)
def _longest_path(source: str) -> int:
    """The longest path a pattern is tested against within MATCH_BUDGET."""
    repeats = _variable_repeats(sre.parse(source))
    low, high = 0, MAX_MATCHED_PATH
    while low < high:
        middle = (low + high + 1) // 2
        if math.comb(middle + repeats, repeats) <= MATCH_BUDGET:
            low = middle
        else:
            high = middle - 1
    return low


def _nested_repeat(items: object, inside: bool) -> bool:
    """Whether a repeated piece of the parsed regex itself repeats or branches, like (a+)+,
    (.*)* or (a|ab)*: the shapes on which backtracking takes exponential time."""
    if isinstance(items, sre.SubPattern):
        items = items.data
    if not isinstance(items, (list, tuple)):
        return False
    for item in items:
        # Opcodes are compared by identity: an int such as a RANGE bound may equal one.
        is_node = isinstance(item, tuple) and len(item) == 2
        if is_node and inside and item[0] is sre.BRANCH:
            return True
        if is_node and any(item[0] is op for op in _REPEATS):
            _low, high, body = item[1]
            many = high > 1
            if (many and inside) or _nested_repeat(body, inside or many):
                return True
        elif isinstance(item, (list, tuple, sre.SubPattern)) and _nested_repeat(item, inside):
            return True
    return False


def pattern_matches(regex: re.Pattern[str], root: str, path: str) -> bool:
    """Whether the file at `path` matches a pattern rooted at folder `root`.

    Like the object model, the regex must match the whole path below the root, which
    starts with '/'.
    """
    below = relative_to(path, root)
    if not below:
        return False
    below = "/" + below
    return len(below) <= _longest_path(regex.pattern) and regex.fullmatch(below) is not None
