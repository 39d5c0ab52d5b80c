"""The stage profile names each stage of a join by the operators its tasks ran."""

import pytest

from fieldnotes.trips.profile import operators_by_stage, stage_name

# A sort-merge join's plan graph as Spark's REST API lists it (root 0; metrics trimmed to those
# that name a stage): blocks 1 and 2 explode the two sides (stages 3 and 4), block 3 joins and
# counts in stage 6, the final count (one task) names no stage.
NODES = [
    {"nodeId": 0, "nodeName": "HashAggregate", "wholeStageCodegenId": 4, "metrics": []},
    {"nodeId": 1, "nodeName": "WholeStageCodegen (4)", "metrics": [{"name": "duration", "value": "3 ms"}]},
    {"nodeId": 2, "nodeName": "Exchange", "metrics": [
        {"name": "shuffle bytes written", "value": "total (min, med, max (stageId: taskId))\n118 B (59 B, 59 B, 59 B (stage 6.0: task 9))"},
        {"name": "local bytes read", "value": "118 B"}]},
    {"nodeId": 3, "nodeName": "HashAggregate", "wholeStageCodegenId": 3, "metrics": []},
    {"nodeId": 4, "nodeName": "SortMergeJoin", "wholeStageCodegenId": 3, "metrics": []},
    {"nodeId": 5, "nodeName": "WholeStageCodegen (3)", "metrics": [{"name": "duration", "value": "total (min, med, max (stageId: taskId))\n2 s (1 s, 1 s, 1 s (stage 6.0: task 8))"}]},
    {"nodeId": 6, "nodeName": "Sort", "wholeStageCodegenId": 3, "metrics": []},
    {"nodeId": 7, "nodeName": "Exchange", "metrics": [
        {"name": "shuffle bytes written", "value": "total (min, med, max (stageId: taskId))\n1 MiB (0.5 MiB, 0.5 MiB, 0.5 MiB (stage 3.0: task 2))"},
        {"name": "remote bytes read", "value": "total (min, med, max (stageId: taskId))\n1 MiB (0.5 MiB, 0.5 MiB, 0.5 MiB (stage 6.0: task 8))"}]},
    {"nodeId": 8, "nodeName": "Generate", "wholeStageCodegenId": 1, "metrics": []},
    {"nodeId": 9, "nodeName": "WholeStageCodegen (1)", "metrics": [{"name": "duration", "value": "total (min, med, max (stageId: taskId))\n1 s (0.5 s, 0.5 s, 0.5 s (stage 3.0: task 2))"}]},
    {"nodeId": 10, "nodeName": "InMemoryTableScan", "metrics": [{"name": "number of output rows", "value": "5,000"}]},
]  # fmt: skip


def _stage(inp=0, read=0, write=0):
    return {"inputBytes": inp, "shuffleReadBytes": read, "shuffleWriteBytes": write}


def test_operators_are_placed_in_the_stages_their_metrics_name():
    ops = operators_by_stage(NODES)
    assert ops[3] == ["Generate", "Exchange"]  # the side's block, then the shuffle it wrote
    assert ops[6] == ["ShuffleRead", "Sort", "SortMergeJoin", "HashAggregate", "Exchange"]
    assert 4 not in ops  # a stage no metric names is left to its bytes


def test_stage_names_read_the_operators_and_fill_in_from_the_bytes():
    ops = operators_by_stage(NODES)
    assert stage_name(ops[3], _stage(inp=10, write=5), last=False) == (
        "scan the cached trips, explode the keys, exchange (shuffle write)"
    )
    assert stage_name(ops[6], _stage(read=5, write=1), last=False) == (
        "shuffle read, sort by key, sort-merge join with the exact test, count, "
        "exchange (shuffle write)"
    )
    assert stage_name([], _stage(read=1), last=True) == (
        "shuffle read, sum the partial counts (the action's result)"
    )
    assert stage_name([], _stage(inp=10), last=False) == (
        "scan the cached trips, collect for the broadcast"
    )


def test_stage_profile_of_a_sort_merge_join_on_the_prepared_cache():
    from fieldnotes.trips.join import prepare_trips, return_trips
    from fieldnotes.trips.measure import load_prepared
    from fieldnotes.trips.planted import planted_trips
    from fieldnotes.trips.profile import stage_profile
    from fieldnotes.trips.session import spark_session, to_spark

    spark = spark_session()
    trips, _ = planted_trips(30, 90.0, seed=8)
    sdf = to_spark(spark, trips)
    with pytest.raises(ValueError, match="not cached"):  # the profile times the query alone
        stage_profile(return_trips(prepare_trips(sdf), 90.0, method="ends"), prepare_trips(sdf))
    load = load_prepared(sdf)
    # both sides shuffled, and the join's stage kept at several tasks (a stage of one task
    # reports its metrics without naming the stage, so only its bytes would name it)
    conf = {"spark.sql.autoBroadcastJoinThreshold": "-1",
            "spark.sql.adaptive.coalescePartitions.enabled": "false"}  # fmt: skip
    for k, v in conf.items():
        spark.conf.set(k, v)
    try:
        prof = stage_profile(return_trips(load.prepared, 90.0, method="ends"), load.prepared)
    finally:
        for k in conf:
            spark.conf.unset(k)
        load.prepared.df.unpersist()
    words = prof["what it does"].tolist()
    assert any("scan the cached trips" in w and "exchange (shuffle write)" in w for w in words)
    assert any("sort-merge join with the exact test" in w for w in words)
    assert words[-1].endswith("(the action's result)")
    assert prof["shuffle write bytes"].sum() > 0 and (prof["tasks"] >= 1).all()
