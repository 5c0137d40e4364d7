"""A long fuzz run of the media loaders: ``tests/test_fuzz_media.py`` with N examples per hypothesis property.

Runs that test file in this process (pytest) with ``VSSL_FUZZ_EXAMPLES=N`` and random (seeded) examples, then
prints the cases tried (every loader call: hypothesis examples and hand-made cases), per test and by outcome
(``ok``, the vssl error type, ``LEAK <type>`` for any other exception or a timeout), and the failures with
their minimal examples as hypothesis reports them. ``--examples 0`` keeps the CI budgets.
Usage: python benchmarks/fuzz_media.py [--examples 1000] [--seed 0] [-k EXPRESSION]
"""

from __future__ import annotations

import argparse
import os
import re
import time
from collections import Counter
from pathlib import Path

import pytest

TEST_FILE = Path(__file__).resolve().parents[1] / "tests" / "test_fuzz_media.py"


class Tally:
    """A pytest plugin counting each test's loader calls (the test module's ``OUTCOMES``) and its failures."""

    def __init__(self) -> None:
        self.outcomes: Counter[str] | None = None
        self.cases: Counter[str] = Counter()
        self.failures: list[tuple[str, str]] = []
        self._before = 0

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        if items:
            self.outcomes = items[0].module.OUTCOMES

    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        self._before = sum(self.outcomes.values()) if self.outcomes is not None else 0

    def pytest_runtest_teardown(self, item: pytest.Item) -> None:
        if self.outcomes is not None:
            self.cases[item.originalname] += sum(self.outcomes.values()) - self._before

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.failed:
            self.failures.append((report.nodeid, report.longreprtext))


def falsifying_example(report: str) -> str:
    """The hypothesis "Falsifying example" block and the error line of a failure report (or its last lines)."""
    example = re.search(r"Falsifying example:.*?\n\)", report, re.S)
    errors = [line for line in report.splitlines() if line.startswith("E ")]
    head = example.group(0) if example else ""
    return "\n".join([head, *errors[-3:]]).strip() or "\n".join(report.splitlines()[-5:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1000, help="examples per property (0: the CI budgets)")
    parser.add_argument("--seed", type=int, default=0, help="hypothesis seed (examples are random but repeatable)")
    parser.add_argument("-k", default="", help="pytest -k expression selecting tests")
    args = parser.parse_args()
    os.environ["VSSL_FUZZ_EXAMPLES"] = str(args.examples)
    tally = Tally()
    options = ["-q", "-p", "no:cacheprovider", "-W", "ignore", f"--hypothesis-seed={args.seed}", str(TEST_FILE)]
    start = time.perf_counter()
    pytest.main(options + (["-k", args.k] if args.k else []), plugins=[tally])
    seconds = time.perf_counter() - start
    outcomes = tally.outcomes or Counter()
    budget = f"{args.examples} examples per property" if args.examples else "CI budgets"
    print(f"\nfuzz_media: {sum(outcomes.values())} cases in {seconds:.1f} s ({budget}, seed {args.seed})")
    print("cases per test:")
    for name, count in tally.cases.most_common():
        print(f"  {name:50s} {count:7d}")
    print("outcomes:")
    for outcome, count in outcomes.most_common():
        print(f"  {outcome:50s} {count:7d}")
    print(f"failures: {len(tally.failures) or 'none'}")
    for nodeid, report in tally.failures:
        print(f"--- {nodeid}\n{falsifying_example(report)}")


if __name__ == "__main__":
    main()
