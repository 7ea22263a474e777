"""End to end at volume: landing -> warehouse -> analyses -> dashboard, stage by stage.

    nice python benchmarks/bench_e2e.py --rows 1000000 --rows 10000000 [--cli]

For each size: the landing of ``bench_ingest.py`` (its generator, same seed, same files) under
``<data>/landing-<rows>/``, reused when ``<data>/landing-<rows>.e2e.json`` says it was written
completely with that seed; a journey spec (``<data>/e2e-<rows>/journey.toml``) that fits the
generated activities; then the nightly job in a fresh subprocess, in the flow's order
(``journeymine.pipelines.nightly`` without Prefect): plan, stage, commit (load_staged, identity
stitching, touchpoints, checkpoint and publish), analyses, alerts, dashboard, summary.

Inner steps are timed by wrapping the product's own functions in that subprocess (``src/`` is
not changed): each wrapped call adds its time, less the time of wrapped calls inside it, to its
step, so the steps of a phase add up to the phase; "other" is the rest (glue, small queries).
Printed: wall time and the peak RSS seen by the end of each step, raw rows/s, the peak RSS of
the main process and of the largest parse worker, the sizes of the landing, the staging, the
warehouse and the dashboard. The script stops if an analysis the spec asks for came out empty
or the row accounting does not add up. ``--cli`` also runs ``python -m journeymine run`` (the
Prefect flow) on the same landing into a second warehouse, for its whole wall time and RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import bench_ingest
import duckdb

MB = 1e6
# The analyses the spec must make non-empty (the brief's four, and the rest the spec asks for).
MUST_HAVE_ROWS = (
    "stage_funnel", "followups", "dfg", "variants", "conformance", "drivers", "retention",
    "paths", "cost_of_waiting",
)  # fmt: skip

# Fits bench_ingest's activities: Segment pages and tracks, Salesforce leads and call tasks,
# Stripe customers, Zendesk tickets and replies, SendGrid mail events, NPS answers.
SPEC = """\
name = "bench e2e: web to customer"
case = "person"
window = "30d"
mode = "ordered"
drift = {{ window = "30d" }}
segments = ["company_size"]

[[stages]]
name = "visit"
activities = ["web.page_view:*"]
repeatable = true

[[stages]]
name = "signup"
activities = ["web.signed_up"]

[[stages]]
name = "demo_requested"
activities = ["web.demo_requested"]

[[stages]]
name = "called"
activities = ["crm.call_completed"]

[[stages]]
name = "customer"
activities = ["billing.customer_created"]

[[followups]]
name = "lead_call"
triggers = ["crm.lead_created"]
responses = ["crm.call_completed"]
sla = "4h"
business_hours = true
converts_to = "customer"

[[followups]]
name = "support_first_reply"
triggers = ["support.ticket_created"]
responses = ["support.reply"]
sla = "8h"
business_hours = true
converts_to = "customer"

[[followups]]
name = "demo_call"
triggers = ["web.demo_requested"]
responses = ["crm.call_completed"]
sla = "1d"
business_hours = false
converts_to = "called"

[[alerts]]
name = "slow-lead-calls"
metric = "breach_rate"
rule = "lead_call"
above = 0.3

[retention]
stage = "signup"
active = ["web.page_view:*"]
period = "month"
periods = 2

[groups]
"Website" = ["web.page_view:*"]

[calendar]
timezone = "UTC"
workdays = ["mon", "tue", "wed", "thu", "fri"]
hours = "09:00-17:00"

[sources.survey]
{survey}
"""


def write_spec(path: Path) -> Path:
    """The journey spec, with bench_ingest's survey column mapping as ``[sources.survey]``."""
    # json.dumps of a plain string is a valid TOML basic string
    survey = "\n".join(f"{k} = {json.dumps(v)}" for k, v in bench_ingest.SURVEY_MAPPING.items())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(SPEC.format(survey=survey))
    return path


def landing_for(data: Path, rows: int, seed: int) -> tuple[Path, int, float]:
    """The landing folder (generated unless a complete one with this seed is there), its raw
    rows and the seconds spent generating it (0 when reused)."""
    landing = data / f"landing-{rows}"
    stamp = data / f"landing-{rows}.e2e.json"  # beside the landing: not a source folder
    if stamp.exists() and landing.is_dir():
        known = json.loads(stamp.read_text())
        if known["seed"] == seed:
            return landing, int(known["written"]), 0.0
    stamp.unlink(missing_ok=True)  # written last: a crash mid-generation leaves none
    started = time.perf_counter()
    written = bench_ingest.generate(landing, rows, seed)
    stamp.write_text(json.dumps({"seed": seed, "written": written}))
    return landing, written, time.perf_counter() - started


def size_of(path: Path) -> int:
    """Bytes on disk of a file or of every file under a folder."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# ---- the child: the nightly job, step by step ---------------------------------------------


class Clock:
    """Wall time per step, exclusive of the wrapped steps called inside it, and the process's
    peak RSS when each step last ended (ru_maxrss only grows: the step that raised it shows)."""

    def __init__(self, progress: Path | None = None) -> None:
        self.steps: dict[str, dict[str, float]] = {}
        self.progress = progress  # each step appended as it ends: a run cut short keeps them
        self.inner: list[float] = []  # per open step: time spent in wrapped calls inside it

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        self.inner.append(0.0)
        start = time.perf_counter()
        try:
            yield
        finally:
            spent = time.perf_counter() - start
            nested = self.inner.pop()
            if self.inner:
                self.inner[-1] += spent
            entry = self.steps.setdefault(name, {"seconds": 0.0, "calls": 0})
            entry["seconds"] += spent - nested
            entry["calls"] += 1
            entry["rss_mb"] = peak_rss_mb(resource.RUSAGE_SELF)
            if self.progress:
                with self.progress.open("a") as f:
                    f.write(json.dumps({"step": name, "seconds": spent - nested, **entry}) + "\n")

    def wrap(self, module: Any, attribute: str, name: str) -> None:
        """Replace ``module.attribute`` by a timed call of it (callers look it up at call time)."""
        original: Callable[..., Any] = getattr(module, attribute)

        def timed(*args: Any, **kwargs: Any) -> Any:
            with self.step(name):
                return original(*args, **kwargs)

        setattr(module, attribute, timed)


def peak_rss_mb(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # KiB on Linux


def wrap_load_steps(clock: Clock) -> None:
    """The commit's inner steps, as ``load.commit_load`` calls them."""
    from journeymine.canonical import identity, touchpoints
    from journeymine.ingest import load

    clock.wrap(load, "load_staged", "commit: load_staged (SQL)")
    clock.wrap(identity, "stitch", "commit: identity stitch")
    clock.wrap(touchpoints, "build", "commit: touchpoints")


def wrap_analysis_steps(clock: Clock) -> None:
    """Each analysis ``analyses.runner.analyse`` runs (names as the runner looks them up)."""
    from journeymine.analyses import conformance, runner
    from journeymine.mining import discovery, pm4py_adapter

    # The runner's own view of discovery: the journey map and drift materialise logs too,
    # and their time stays theirs.
    runner.discovery = types.ModuleType("discovery")
    vars(runner.discovery).update(vars(discovery))
    for module, attribute, name in (
        (runner, "log_from_touchpoints", "event log"),
        (runner.discovery, "materialise_log", "event log"),
        (runner.discovery, "write_discovery", "discovery (dfg, variants)"),
        (runner, "write_journey_map", "journey map"),
        (runner, "write_followups", "followups"),
        (runner, "write_stage_funnel", "stage funnel"),
        (runner, "write_feelings", "feelings"),
        (runner, "write_cost_of_waiting", "cost of waiting"),
        (conformance, "write_conformance", "conformance"),
        (runner, "drivers", "drivers"),
        (runner, "compare_periods", "drift"),
        (runner, "retention", "retention"),
        (runner, "dropped_paths", "paths"),
        (runner, "write_journey_grid", "journey grid"),
        (runner, "write_opportunities", "opportunities"),
        (runner, "write_headlines", "headlines"),
        (pm4py_adapter, "discover_model", "process model (pm4py)"),
        (pm4py_adapter, "write_model", "process model (pm4py)"),
    ):
        clock.wrap(module, attribute, "analyse: " + name)


def nightly_steps(landing: str, db: str, journey: str, out: str) -> dict[str, Any]:
    """The flow's sequence (pipelines/nightly.py) without Prefect, every step timed."""
    from journeymine import warehouse
    from journeymine.ingest import load
    from journeymine.spec import load_spec, source_options

    clock = Clock(Path(db).parent / "steps.jsonl")
    wrap_load_steps(clock)
    wrap_analysis_steps(clock)
    options = source_options(load_spec(journey))
    staging = load.staging_root(db) / "e2e"
    with clock.step("plan (scan, sha256)"):
        plan = load.plan_load(None, landing)
    with clock.step("stage (parse, Parquet)"):
        staged = load.stage_files(load.planned_files(plan), staging, options=options)
    staging_bytes = size_of(staging)
    report = load.report_of(plan, "e2e", staged.errors)
    commit = clock.step("commit: transaction (copy, checkpoint, publish)")
    with commit, warehouse.transaction(db) as con:
        load.commit_load(con, [staged.folder], "e2e", report)
    shutil.rmtree(staging)
    warehouse_bytes = size_of(Path(db))
    analyse_publish(clock, db, journey, out)
    result = {
        "steps": clock.steps,
        "totals": report.totals(),
        "touchpoints": report.touchpoints,
        "errors": report.errors,
        "staging_bytes": staging_bytes,
        "warehouse_loaded_bytes": warehouse_bytes,
        "rss_main_mb": peak_rss_mb(resource.RUSAGE_SELF),
        "rss_worker_mb": peak_rss_mb(resource.RUSAGE_CHILDREN),
    }
    return result


def analyse_publish(clock: Clock, db: str, journey: str, out: str) -> None:
    """Analyses (as ``runner.analyse_warehouse``), alerts, dashboard and summary, timed."""
    from journeymine import summary, warehouse
    from journeymine.analyses import alerts, runner
    from journeymine.canonical import identity
    from journeymine.dashboard import export_report
    from journeymine.ingest.load import LoadReport
    from journeymine.spec import load_spec

    spec = load_spec(journey)
    glue = clock.step("analyse: transaction (copy, checkpoint, publish), other")
    with glue, warehouse.transaction(db) as con:
        runner.analyse(con, spec, Path(out))
    with clock.step("alerts"), warehouse.transaction(db) as con:
        frame = alerts.evaluate_alerts(con, alerts.load_alerts(journey))
        alerts.write_alerts(con, frame, "e2e")
    with clock.step("dashboard export"):
        export_report(db, journey, out)
    with clock.step("summary (text)"):
        con = warehouse.connect(db, read_only=True)
        try:
            figures, previous = summary.run_figures(con)
            quality = identity.identity_quality(con)
            summary.opportunities_markdown(con)
        finally:
            con.close()
        summary.markdown_summary(LoadReport("e2e"), figures, previous, frame, quality)


# ---- the parent: generate, run, check, print ----------------------------------------------


def run_child(*args: str, env: dict[str, str] | None = None) -> tuple[dict[str, Any], float, float]:
    """``args`` in a fresh interpreter; its last stdout line (JSON), wall seconds, and the peak
    RSS of its largest process (itself or a worker: RUSAGE_CHILDREN of a wrapper process)."""
    wrapper = (
        "import json, resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "sys.stderr.write(p.stderr[-4000:])\n"
        "print(p.stdout.strip().splitlines()[-1] if p.returncode == 0 and p.stdout.strip() "
        "else 'null')\n"
        "print(json.dumps([p.returncode, time.perf_counter() - t, "
        "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", wrapper, *args],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **(env or {})},
    )
    last, meta = done.stdout.strip().splitlines()[-2:]
    code, seconds, rss = json.loads(meta)
    if code != 0:
        raise SystemExit(f"{' '.join(args)} failed ({code}):\n{done.stderr}")
    try:
        payload = json.loads(last)
    except json.JSONDecodeError:  # the CLI prints text, not JSON
        payload = None
    return payload or {}, seconds, rss


def check(db: Path, result: dict[str, Any], written: int) -> dict[str, int]:
    """Stop unless every row is accounted for and the analyses the spec asks for have rows."""
    t = result["totals"]
    if t["rows_read"] != written or t["rows_read"] != (
        t["rows_loaded"] + t["duplicates"] + t["quarantined"]
    ):
        raise SystemExit(f"row accounting does not add up: {t}, {written} written")
    con = duckdb.connect(str(db), read_only=True)
    try:
        counts = {
            table: int(con.execute(f'SELECT count(*) FROM "{table}"').fetchall()[0][0])
            for table in MUST_HAVE_ROWS
        }
    finally:
        con.close()
    empty = [table for table, n in counts.items() if n == 0]
    if empty:
        raise SystemExit(f"the spec left these analyses empty: {', '.join(empty)}")
    return counts


def bench(rows: int, data: Path, seed: int, cli: bool) -> dict[str, Any]:
    landing, written, generated_s = landing_for(data, rows, seed)
    work = data / f"e2e-{rows}"
    shutil.rmtree(work, ignore_errors=True)
    journey = write_spec(work / "journey.toml")
    db, out = work / "warehouse.duckdb", work / "out"
    result, wall, rss_max = run_child(
        sys.executable, __file__, "--child", str(landing), str(db), str(journey), str(out)
    )
    result |= {"rows": rows, "written": written, "generated_s": generated_s, "wall_s": wall}
    result |= {"rss_max_mb": rss_max, "landing_bytes": size_of(landing)}
    result |= {"warehouse_bytes": size_of(db), "dashboard_bytes": size_of(out / "dashboard.html")}
    (work / "result.json").write_text(json.dumps(result, indent=1))  # kept if the check stops
    result["tables"] = check(db, result, written)
    (work / "result.json").write_text(json.dumps(result, indent=1))
    if cli:
        result["cli"] = run_cli(landing, journey, work)
        (work / "result.json").write_text(json.dumps(result, indent=1))
    return result


# On a busy machine Prefect's temporary server can take longer than its default 20 s to start
# (`journeymine run` then stops before loading anything): give it two minutes.
PREFECT_ENV = {"PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120"}


def run_cli(landing: Path, journey: Path, work: Path) -> dict[str, Any]:
    """``journeymine run`` (the Prefect flow) on the same landing, into a second warehouse."""
    db, out = work / "cli.duckdb", work / "out-cli"
    try:
        _, wall, rss = run_child(
            sys.executable, "-m", "journeymine", "run", "--landing", str(landing),
            "--warehouse", str(db), "--journey", str(journey), "--out", str(out), env=PREFECT_ENV,
        )  # fmt: skip
    except SystemExit as exc:  # the step-by-step figures stand; say why this one is missing
        return {"failed": str(exc)[-2000:]}
    return {"wall_s": wall, "rss_max_mb": rss}


def show(r: dict[str, Any]) -> None:
    rows = r["totals"]["rows_read"]
    steps = r["steps"]
    timed = sum(s["seconds"] for s in steps.values())
    made = f"generated in {r['generated_s']:.0f} s" if r["generated_s"] else "reused"
    print(f"\n{rows:,} raw rows, landing {r['landing_bytes'] / MB:,.0f} MB ({made})")
    print(f"{'step':<58} {'s':>8} {'calls':>5} {'peak RSS MB':>11}")
    for name, s in steps.items():
        print(f"{name:<58} {s['seconds']:8.2f} {int(s['calls']):5d} {s['rss_mb']:11,.0f}")
    print(f"{'all steps':<58} {timed:8.2f}   ->  {rows / timed:,.0f} raw rows/s end to end")
    print(f"{'child process wall (imports included)':<58} {r['wall_s']:8.2f}")
    print(f"peak RSS: main {r['rss_main_mb']:,.0f} MB, largest parse worker "
          f"{r['rss_worker_mb']:,.0f} MB, largest of all {r['rss_max_mb']:,.0f} MB")  # fmt: skip
    print(f"disk: staging {r['staging_bytes'] / MB:,.0f} MB, warehouse after the load "
          f"{r['warehouse_loaded_bytes'] / MB:,.0f} MB, at the end {r['warehouse_bytes'] / MB:,.0f}"
          f" MB, dashboard {r['dashboard_bytes'] / MB:,.1f} MB")  # fmt: skip
    t = r["totals"]
    print(f"rows read {t['rows_read']:,} = loaded {t['rows_loaded']:,} + duplicates "
          f"{t['duplicates']:,} + quarantined {t['quarantined']:,}; {r['touchpoints']:,} "
          f"touchpoints; {len(r['errors'])} file errors")  # fmt: skip
    print("analysis rows: " + ", ".join(f"{k} {v:,}" for k, v in r["tables"].items()))
    if "cli" in r and "failed" in r["cli"]:
        print(f"`journeymine run` failed: {r['cli']['failed']}")
    elif "cli" in r:
        print(f"`journeymine run` (Prefect flow, same landing): {r['cli']['wall_s']:.1f} s wall, "
              f"peak RSS {r['cli']['rss_max_mb']:,.0f} MB")  # fmt: skip


def main() -> None:
    if len(sys.argv) == 6 and sys.argv[1] == "--child":
        print(json.dumps(nightly_steps(*sys.argv[2:])))
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, action="append", help="raw rows (repeatable)")
    parser.add_argument("--data", type=Path, default=Path(__file__).parent / "data")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--cli", action="store_true", help="also time `journeymine run`")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, duckdb {duckdb.__version__}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()}")  # fmt: skip
    for rows in args.rows or [100_000]:
        show(bench(rows, args.data.resolve(), args.seed, args.cli))
        print(f"load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
