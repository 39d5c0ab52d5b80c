"""Where a Spark query spends its time: the stages of one action, from Spark's REST API on the
driver's UI (127.0.0.1), each named by what it does (scan, explode, exchange, join, filter, count).

A stage's metrics come from ``/api/v1/applications/<id>/stages``. What it does comes from the
query's plan graph (``/sql/<execution id>``): a plan node's metrics name the stages whose tasks
updated them ("(stage 4.0: task 12)"), so every operator of a whole-stage-codegen block belongs
to the stages its block's metrics name. Where a stage's tasks left no such trace (a stage of one
task reports its metrics without the stage) its bytes fill in what it did (``stage_name``).
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
import uuid

OPERATOR_WORDS = {
    "ShuffleRead": "shuffle read",
    "InMemoryTableScan": "scan the cached trips",
    "Generate": "explode the keys",
    "Sort": "sort by key",
    "SortMergeJoin": "sort-merge join with the exact test",
    "BroadcastHashJoin": "broadcast hash join with the exact test",
    "ShuffledHashJoin": "shuffled hash join with the exact test",
    "BroadcastNestedLoopJoin": "nested-loop join with the exact test",
    "CartesianProduct": "cross join",
    "Filter": "filter",
    "HashAggregate": "count",
    "Exchange": "exchange (shuffle write)",
    "BroadcastExchange": "collect for the broadcast",
}
"""Words for the plan operators a return-trips query runs. ``ShuffleRead`` stands for the
reading end of an ``Exchange`` (its read metrics are updated by the stage after it)."""

_STAGE_IN_METRIC = re.compile(r"\(stage (\d+)\.\d+: task \d+\)")
_READ_METRIC = re.compile(r"read|fetch|blocks|reqs")
"""Names of an ``Exchange``'s metrics that its reading stage updates (the others: the writer's)."""


def _get(spark, path: str):
    """JSON from the driver's REST API (``path`` below ``/api/v1/applications/<id>``)."""
    sc = spark.sparkContext
    url = f"{sc.uiWebUrl}/api/v1/applications/{sc.applicationId}{path}"
    with urllib.request.urlopen(url, timeout=30) as resp:  # the driver's own UI, on this machine
        return json.load(resp)


def _stages_in(metrics: list[dict]) -> set[int]:
    """Stage ids named in plan-node metric values."""
    return {int(m) for x in metrics for m in _STAGE_IN_METRIC.findall(x["value"])}


def operators_by_stage(nodes: list[dict]) -> dict[int, list[str]]:
    """Plan operator names per stage id (leaves first, as a stage runs them) from the nodes of
    a query's plan graph (``/sql/<id>``): each node's metrics name the stages that updated them;
    a whole-stage-codegen block's stages hold all of its operators; an ``Exchange``'s write
    metrics name the stage that wrote it and its other metrics the stage that read it
    (``ShuffleRead``)."""
    block_stages: dict[int, set[int]] = {}
    for node in nodes:
        codegen = re.fullmatch(r"WholeStageCodegen \((\d+)\)", node["nodeName"])
        block = int(codegen.group(1)) if codegen else node.get("wholeStageCodegenId")
        if block is not None:
            block_stages.setdefault(block, set()).update(_stages_in(node["metrics"]))
    out: dict[int, list[str]] = {}
    for node in sorted(nodes, key=lambda n: -n["nodeId"]):  # the graph numbers the root 0
        name, block = node["nodeName"], node.get("wholeStageCodegenId")
        if name == "Exchange":
            read = [m for m in node["metrics"] if _READ_METRIC.search(m["name"])]
            write = [m for m in node["metrics"] if not _READ_METRIC.search(m["name"])]
            for stage in _stages_in(read):
                out.setdefault(stage, []).insert(0, "ShuffleRead")
            found = _stages_in(write)
        else:
            found = (
                block_stages.get(block, set()) if block is not None else _stages_in(node["metrics"])
            )
        if name in OPERATOR_WORDS:
            for stage in found:
                out.setdefault(stage, []).append(name)
    return out


def stage_name(operators: list[str], stage: dict, *, last: bool) -> str:
    """Readable name of a stage of a ``count()`` over a cached table: its plan operators in words
    (``OPERATOR_WORDS``, repeats dropped), a scan of the cache where the stage read input
    bytes (the only table the profiled plan reads), and, where its operators left no trace,
    what its bytes show (the last stage sums the partial counts, the action's result; a stage
    that reads the cache and writes no shuffle collects rows for a broadcast)."""
    ops = list(operators)
    if stage["inputBytes"] and "InMemoryTableScan" not in ops:
        ops.insert(0, "InMemoryTableScan")
    if stage["shuffleReadBytes"] and "ShuffleRead" not in ops:
        ops.insert(0, "ShuffleRead")
    words = list(dict.fromkeys(OPERATOR_WORDS[o] for o in ops))
    if last and not stage["shuffleWriteBytes"] and len(ops) <= 1:
        words.append("sum the partial counts (the action's result)")
    elif not last and not stage["shuffleWriteBytes"] and "BroadcastExchange" not in ops:
        words.append(OPERATOR_WORDS["BroadcastExchange"])
    return ", ".join(words)


def stage_profile(df, prepared, *, settle_s: float = 10.0):
    """Run ``df.count()`` once, on the cached ``prepared`` trips only (``measure.check_reads_prepared``),
    and return its stages (pandas, in the order they ran): stage id, what it does, tasks, wall
    seconds (first task launched to completion), executor seconds (summed over tasks), input
    bytes (the cache read), shuffle bytes read and written. Stages Spark skipped (their output
    was already there) are left out. ``settle_s``: seconds to wait for Spark's asynchronous
    listener to record the stages."""
    import pandas as pd

    from fieldnotes.trips.measure import check_reads_prepared

    check_reads_prepared(df, prepared)
    spark = df.sparkSession
    sc = spark.sparkContext
    group = f"fieldnotes-profile-{uuid.uuid4().hex[:8]}"
    sc.setJobGroup(group, "stage profile")
    try:
        df.count()
    finally:
        sc.setLocalProperty("spark.jobGroup.id", None)
        sc.setLocalProperty("spark.job.description", None)
    deadline = time.monotonic() + settle_s
    while True:
        jobs = [j for j in _get(spark, "/jobs") if j.get("jobGroup") == group]
        done = jobs and all(j["status"] != "RUNNING" for j in jobs)
        stage_ids = {s for j in jobs for s in j["stageIds"]}
        stages = [s for s in _get(spark, "/stages") if s["stageId"] in stage_ids]
        if done and stages and all(s["status"] in ("COMPLETE", "SKIPPED") for s in stages):
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"Spark had not recorded the stages of job group {group}")
        time.sleep(0.2)
    job_ids = {j["jobId"] for j in jobs}
    runs = [e for e in _get(spark, "/sql?details=true&planDescription=false")
            if job_ids & set(e.get("successJobIds", []))]  # fmt: skip
    operators = operators_by_stage(runs[-1]["nodes"]) if runs else {}
    done = sorted((s for s in stages if s["status"] == "COMPLETE"), key=lambda s: s["stageId"])
    rows = []
    for s in done:
        start, end = s.get("firstTaskLaunchedTime"), s.get("completionTime")
        wall = (pd.Timestamp(end) - pd.Timestamp(start)).total_seconds() if start and end else None
        rows.append(
            {
                "stage": s["stageId"],
                "what it does": stage_name(operators.get(s["stageId"], []), s, last=s is done[-1]),
                "tasks": s["numTasks"],
                "wall (s)": wall,
                "executor (s)": s["executorRunTime"] / 1000,
                "input bytes": s["inputBytes"],
                "shuffle read bytes": s["shuffleReadBytes"],
                "shuffle write bytes": s["shuffleWriteBytes"],
            }
        )
    return pd.DataFrame(rows)
