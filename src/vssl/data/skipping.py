"""Training data that survives an unreadable item: the item is left out of its batch and reported, never replaced.

`SkipUnreadable` wraps a training dataset; an item whose loading raises a `VsslError` (an unreadable
image or audio file: `MediaError`, naming the file) becomes an `Unreadable` record instead of a sample.
`collate_readable`, the loader's ``collate_fn``, stacks the readable samples of a batch as the default
collate does and lists the records under ``"unreadable"``; the batch is then shorter by that many pairs
(no other item takes the place of a broken one, so an epoch still holds each item at most once). Both
run in DataLoader worker processes as well as in the main one; the records are plain data.

What the trainer does with the records (count, budget, report) is in :mod:`vssl.train.skips`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from torch.utils.data import Dataset, default_collate

from vssl.errors import MediaError, VsslError

UNREADABLE = "unreadable"


@dataclass(frozen=True)
class Unreadable:
    """Item ``index`` could not be loaded: ``file`` (when the error names one) and the error message."""

    index: int
    file: str | None
    error: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class SkipUnreadable(Dataset):
    """``dataset[i]``, or an `Unreadable` record when loading item ``i`` raises a `VsslError`.

    Other exceptions (bugs, out of memory) propagate: only a bad input is skipped.
    """

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any] | Unreadable:
        try:
            return self.dataset[index]
        except VsslError as exc:
            return Unreadable(index, exc.path if isinstance(exc, MediaError) else None, str(exc))


def collate_readable(samples: list[dict[str, Any] | Unreadable]) -> dict[str, Any]:
    """A batch of the readable ``samples`` (default collate; empty dict when none is readable), with the
    records of the others as ``batch["unreadable"]`` (a list of dicts, see `Unreadable`)."""
    readable = [s for s in samples if not isinstance(s, Unreadable)]
    batch = default_collate(readable) if readable else {}
    batch[UNREADABLE] = [s.as_dict() for s in samples if isinstance(s, Unreadable)]
    return batch


def readable_count(batch: dict[str, Any]) -> int:
    """Pairs in a batch made by `collate_readable`."""
    return len(batch["index"]) if "index" in batch else 0
