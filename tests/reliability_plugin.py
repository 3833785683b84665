"""The reliability table: counts every test marked ``@pytest.mark.reliability(area, case)`` into Markdown.

Per (area, case) it counts the tests (test functions), the cases tried and the outcome. Cases tried are, per
collected item: the examples Hypothesis ran (every phase but shrinking), plus what the test added through
the ``reliability_cases`` fixture (``reliability_cases.add(n)`` for a loop over n inputs); an item that does
neither counts as one case, so each parameter set of a parametrized test is one case.

Under pytest-xdist the workers collect and run the tests; each report carries its item's record (classes and
cases counted so far, in ``user_properties``) to the controller, which alone writes the table.

``pytest --reliability-report=PATH`` writes PATH, but only when the whole default selection ran (no file or
node arguments, no -k/-m/--lf/--deselect, nothing stopped early): a partial run never overwrites the table.
Write it with ``=``: pytest reads its arguments before it loads this plugin, and a separate existing PATH
would be taken for the test path to run (tests/conftest.py, which registers the option, is then not loaded).
"""

from __future__ import annotations

import datetime as dt
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pytest

MARKER = "reliability"
_ITEM_KEY = pytest.StashKey["ItemRecord"]()
_PLUGIN_KEY = pytest.StashKey["ReliabilityCollector"]()
_PROPERTY = "reliability-record"  # a report's user property carrying its item's record to the xdist controller
# Hypothesis phases whose examples count as cases tried; the shrink phase replays variants of a failure.
_COUNTED_PHASES = ("explicit-phase", "reuse-phase", "generate-phase", "target-phase")


@dataclass
class ItemRecord:
    nodeid: str
    function: str  # node id without the parameter part: one "test" however many parameter sets
    classes: list[tuple[str, str]]
    hypothesis_cases: int = 0
    added_cases: int = 0
    outcome: str = "not run"  # passed, failed, skipped, not run

    @property
    def cases(self) -> int:
        return (self.hypothesis_cases + self.added_cases) or 1


class CaseCounter:
    """The ``reliability_cases`` fixture: ``add(n)`` counts n inputs tried by a loop inside one test."""

    def __init__(self, record: ItemRecord | None) -> None:
        self._record = record

    def add(self, n: int = 1) -> None:
        if n < 0:
            raise ValueError(f"reliability_cases.add: n must not be negative, got {n}")
        if self._record is None:
            raise RuntimeError("reliability_cases is only for tests marked @pytest.mark.reliability(area, case)")
        self._record.added_cases += n


def _classes(item: pytest.Item) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for marker in item.iter_markers(MARKER):
        args = marker.args
        area = args[0] if len(args) > 0 else marker.kwargs.get("area")
        case = args[1] if len(args) > 1 else marker.kwargs.get("case")
        if not (isinstance(area, str) and area and isinstance(case, str) and case):
            raise pytest.UsageError(f"{item.nodeid}: @pytest.mark.reliability needs (area, case) strings, got {marker}")
        if (area, case) not in found:
            found.append((area, case))
    return found


@dataclass(eq=False)  # registered as a plugin: must stay hashable
class ReliabilityCollector:
    config: pytest.Config
    path: Path | None
    records: dict[str, ItemRecord] = field(default_factory=dict)
    collected: int = 0
    ran: set[str] = field(default_factory=set)
    deselected: int = 0
    collection_errors: int = 0

    # ---------------------------------------------------------------- collection

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            classes = _classes(item)
            if classes:
                function = item.nodeid.split("[", 1)[0]
                record = ItemRecord(item.nodeid, function, classes)
                self.records[item.nodeid] = record
                item.stash[_ITEM_KEY] = record

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        self.deselected += len(items)
        for item in items:
            self.records.pop(item.nodeid, None)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.collection_errors += 1

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.collected = len(session.items)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids: list[str]) -> None:
        self.collected = max(self.collected, len(ids))  # every worker collects the whole selection

    # ---------------------------------------------------------------- running

    @pytest.hookimpl(hookwrapper=True, trylast=True)
    def pytest_runtest_call(self, item: pytest.Item):
        record = item.stash.get(_ITEM_KEY, None)
        if record is None:
            yield
            return
        # Inside Hypothesis' own wrapper (trylast): chain its statistics callback, so both see every run.
        from hypothesis.statistics import collector

        previous = collector.value

        def note(stats: dict) -> None:
            for phase in _COUNTED_PHASES:
                for case in stats.get(phase, {}).get("test-cases", []):
                    if case.get("status") in ("valid", "interesting"):
                        record.hypothesis_cases += 1
            if previous is not None:
                previous(stats)

        with collector.with_value(note):
            yield

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call):
        outcome = yield
        record = item.stash.get(_ITEM_KEY, None)
        if record is not None:
            fields = ("nodeid", "function", "classes", "hypothesis_cases", "added_cases")
            payload = {k: getattr(record, k) for k in fields}
            outcome.get_result().user_properties.append((_PROPERTY, payload))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" or (report.when == "setup" and not report.passed):
            self.ran.add(report.nodeid)
        payload = next((value for name, value in report.user_properties if name == _PROPERTY), None)
        if payload is None:
            return
        # by the item's node id: a subtest's report (schemathesis' one per operation) has one of its own
        record = self.records.get(payload["nodeid"])
        if record is None:  # the xdist controller: the worker's record, as the report brings it
            classes = [tuple(c) for c in payload["classes"]]
            record = self.records[payload["nodeid"]] = ItemRecord(payload["nodeid"], payload["function"], classes)
        record.hypothesis_cases, record.added_cases = payload["hypothesis_cases"], payload["added_cases"]
        if report.failed:
            record.outcome = "failed"
        elif report.skipped and record.outcome != "failed":
            record.outcome = "skipped"
        elif report.when == "call" and report.passed and record.outcome == "not run":
            record.outcome = "passed"

    # ---------------------------------------------------------------- report

    def _partial_reason(self, session: pytest.Session) -> str | None:
        option = self.config.option
        if self.config.args_source != pytest.Config.ArgsSource.TESTPATHS:
            return "file or node arguments were given"
        if getattr(option, "keyword", "") or getattr(option, "markexpr", ""):
            return "-k or -m selected part of the suite"
        if getattr(option, "lf", False) or getattr(option, "stepwise", False) or getattr(option, "ignore", None):
            return "--lf, --sw or --ignore selected part of the suite"
        if self.deselected:
            return f"{self.deselected} tests were deselected"
        if self.collection_errors:
            return "collection errors"
        if session.shouldstop or session.shouldfail or len(self.ran) < self.collected:
            return f"the run stopped early ({len(self.ran)} of {self.collected} tests ran)"
        return None

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.path is None or hasattr(self.config, "workerinput"):  # an xdist worker: the controller writes it
            return
        reason = self._partial_reason(session)
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reason is not None:
            message = f"reliability report NOT written to {self.path}: {reason} (only a full run writes it)"
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(self.render(), encoding="utf-8")
            message = f"reliability report written to {self.path} ({len(self.records)} marked tests)"
        self.message = message
        if reporter is not None:
            reporter.write_line(message)

    def render(self) -> str:
        rows: dict[tuple[str, str], dict] = defaultdict(lambda: {"tests": set(), "cases": 0, "failed": 0, "skipped": 0})
        for record in self.records.values():
            for key in record.classes:
                row = rows[key]
                row["tests"].add(record.function)
                row["cases"] += record.cases
                if record.outcome == "failed":
                    row["failed"] += 1
                elif record.outcome in ("skipped", "not run"):
                    row["skipped"] += 1
        lines = [
            "# Reliability: fault and input classes tried",
            "",
            "<!-- Generated by tests/reliability_plugin.py from a full test run; do not edit by hand. -->",
            "Generated by the test run (`tests/reliability_plugin.py`); do not edit by hand.",
            "",
            f"- command: `{_command(self.config)}`",
            f"- date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
            f"- database vendor: {_database_vendor()}",
            f"- Python {sys.version.split()[0]}, pytest {pytest.__version__}",
            "",
            "Each row is a fault or bad-input class (`@pytest.mark.reliability(area, case)`). *Tests* counts test",
            "functions, *cases tried* counts parameter sets, Hypothesis examples and the inputs a test loops over.",
            "",
        ]
        total_tests: set[str] = set()
        total_cases = total_failed = total_skipped = 0
        for area in sorted({a for a, _ in rows}):
            lines += [f"## {area}", "", "| case | tests | cases tried | outcome |", "|---|---:|---:|---|"]
            area_tests: set[str] = set()
            area_cases = 0
            for (row_area, case), row in sorted(rows.items()):
                if row_area != area:
                    continue
                lines.append(f"| {_cell(case)} | {len(row['tests'])} | {row['cases']} | {_outcome(row)} |")
                area_tests |= row["tests"]
                area_cases += row["cases"]
                total_cases += row["cases"]
                total_failed += row["failed"]
                total_skipped += row["skipped"]
            lines += [f"| **{_cell(area)} total** | {len(area_tests)} | {area_cases} | |", ""]
            total_tests |= area_tests
        outcome = _outcome({"failed": total_failed, "skipped": total_skipped})
        lines += [
            "## Totals",
            "",
            f"{len(rows)} classes in {len({a for a, _ in rows})} areas, {len(total_tests)} tests, "
            f"{total_cases} cases tried: {outcome}.",
            "",
        ]
        return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _outcome(row: dict) -> str:
    parts = []
    if row["failed"]:
        parts.append(f"{row['failed']} failed")
    if row["skipped"]:
        parts.append(f"{row['skipped']} skipped")
    return ", ".join(parts) or "all passed"


def _command(config: pytest.Config) -> str:
    return " ".join(["pytest", *config.invocation_params.args])


def _database_vendor() -> str:
    try:
        from django.db import connection
    except ImportError:
        return "none (no Django)"
    try:
        return connection.vendor
    except Exception:  # settings not configured: a plugin test outside the project
        return "unknown"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("reliability").addoption(
        "--reliability-report",
        metavar="PATH",
        default=None,
        help="write the reliability table (Markdown) to PATH after a full run of the default selection",
    )


def pytest_configure(config: pytest.Config) -> None:
    path = config.getoption("reliability_report")
    plugin = ReliabilityCollector(config, Path(path) if path else None)
    config.stash[_PLUGIN_KEY] = plugin
    config.pluginmanager.register(plugin, "reliability-collector")


@pytest.fixture
def reliability_cases(request: pytest.FixtureRequest) -> CaseCounter:
    """Count the inputs a reliability test tries in a loop: ``reliability_cases.add(len(inputs))``."""
    return CaseCounter(request.node.stash.get(_ITEM_KEY, None))
