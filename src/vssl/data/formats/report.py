"""What a reader excluded or noticed while reading a dataset: logged, and attached to the item list.

Every reader returns an :class:`ItemList` (a plain ``list`` of :class:`~vssl.data.items.AVItem` with a
``report`` attribute), so callers that only want items need not care, and callers that publish numbers
can say exactly which annotations were dropped and why::

    items = read_items("vggss:/data/vggss", "test")
    print(items.report.summary())       # vggss:/data/vggss test: 5146 items; excluded 12: garbage value 12; ...
    items.report.excluded_ids()         # ['...', ...]
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from vssl.data.items import AVItem

logger = logging.getLogger(__name__)

_SHOWN = 5  # ids named per kind in a log line; the report keeps all of them


@dataclass(frozen=True)
class Issue:
    """One problem found in one item: ``kind`` groups issues (e.g. ``"garbage value"``), ``detail`` says where."""

    kind: str
    item: str
    detail: str
    excluded: bool
    """Whether the item was left out of the returned list because of this issue."""


@dataclass
class ReadReport:
    """Everything a reader dropped or noticed; ``num_items`` is the length of the returned list."""

    format: str
    root: Path
    split: str
    num_items: int = 0
    issues: list[Issue] = field(default_factory=list)

    def add(self, kind: str, item: str, detail: str, excluded: bool) -> None:
        """Record one issue."""
        self.issues.append(Issue(kind, item, detail, excluded))

    def counts(self) -> dict[str, int]:
        """Number of issues per kind, e.g. ``{"garbage value": 12, "degenerate box": 18}``."""
        return dict(Counter(issue.kind for issue in self.issues))

    def excluded_ids(self) -> list[str]:
        """Ids of the items left out, in the order they were met (each once)."""
        return list(dict.fromkeys(issue.item for issue in self.issues if issue.excluded))

    def of_kind(self, kind: str) -> list[Issue]:
        """The issues of one kind."""
        return [issue for issue in self.issues if issue.kind == kind]

    def summary(self) -> str:
        """One line: items kept, items excluded, and the count of every kind of issue."""
        head = f"{self.format}:{self.root} {self.split}: {self.num_items} items"
        excluded = self.excluded_ids()
        if excluded:
            head += f"; excluded {len(excluded)}"
        counts = self.counts()
        if counts:
            head += "; " + ", ".join(f"{kind} {n}" for kind, n in sorted(counts.items()))
        return head

    def log(self) -> None:
        """Log the summary (info) and, per kind, the first few items (warning); every issue at debug level."""
        logger.info("%s", self.summary())
        for kind in sorted(self.counts()):
            issues = self.of_kind(kind)
            shown = "; ".join(f"{i.item}: {i.detail}" for i in issues[:_SHOWN])
            more = f" (+{len(issues) - _SHOWN} more)" if len(issues) > _SHOWN else ""
            dropped = sum(i.excluded for i in issues)
            logger.warning("%s %s: %d (%d items excluded): %s%s", self.format, kind, len(issues), dropped, shown, more)
            for issue in issues:
                logger.debug("%s %s: %s: %s", self.format, kind, issue.item, issue.detail)


class ItemList(list[AVItem]):
    """A reader's items, with the :class:`ReadReport` of what was excluded or noticed as ``report``."""

    def __init__(self, items: Iterable[AVItem], report: ReadReport):
        super().__init__(items)
        self.report = report
        report.num_items = len(self)


def finish(items: Iterable[AVItem], report: ReadReport) -> ItemList:
    """Wrap ``items`` with ``report`` and log the report: the last line of every reader."""
    result = ItemList(items, report)
    report.log()
    return result
