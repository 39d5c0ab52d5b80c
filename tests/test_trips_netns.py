"""Hosts that really differ: the master and a worker in their own network namespace (own
address), the driver in the root namespace. Advertising 127.0.0.1 fails there; the configured
driver host gives the oracle's pairs."""

import os
import subprocess

import pytest
from trips_helpers import as_pairs, stop_active_session

from fieldnotes.trips.cluster import start_local_cluster
from fieldnotes.trips.join import return_trips
from fieldnotes.trips.oracle import return_trips_exact
from fieldnotes.trips.planted import planted_trips
from fieldnotes.trips.session import to_spark

pytestmark = pytest.mark.slow

DRIVER_IP, CLUSTER_IP = "10.213.7.1", "10.213.7.2"


def ip(*args, netns=None):
    prefix = ["ip", "netns", "exec", netns] if netns else []
    return subprocess.run([*prefix, "ip", *args], capture_output=True, text=True, timeout=30)


@pytest.fixture(scope="module")
def namespace():
    """A namespace ``fnspark<pid>`` joined to the root namespace by a veth pair; removed after."""
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root (ip netns add)")
    ns, host_end, ns_end = f"fnspark{os.getpid()}", f"fnh{os.getpid()}", f"fnn{os.getpid()}"
    made = ip("netns", "add", ns)
    if made.returncode != 0:
        pytest.skip(f"cannot make a network namespace here: {made.stderr.strip()}")
    try:
        steps = [
            (("link", "add", host_end, "type", "veth", "peer", "name", ns_end), None),
            (("link", "set", ns_end, "netns", ns), None),
            (("addr", "add", f"{DRIVER_IP}/24", "dev", host_end), None),
            (("link", "set", host_end, "up"), None),
            (("addr", "add", f"{CLUSTER_IP}/24", "dev", ns_end), ns),
            (("link", "set", ns_end, "up"), ns),
            (("link", "set", "lo", "up"), ns),
        ]
        for args, where in steps:
            done = ip(*args, netns=where)
            if done.returncode != 0:
                pytest.skip(f"cannot wire the namespace (ip {' '.join(args)}): {done.stderr}")
        yield ns
    finally:
        ip("link", "del", host_end)
        ip("netns", "del", ns)


def test_driver_host_must_be_one_the_executors_reach(namespace):
    stop_active_session()
    r = 60.0
    trips, _ = planted_trips(300, r, seed=21, spread_m=6 * r)
    want = return_trips_exact(trips, r)
    with start_local_cluster(workers=1, host=CLUSTER_IP, netns=namespace) as cluster:
        assert cluster.master_url.startswith(f"spark://{CLUSTER_IP}:")
        with pytest.raises(ValueError, match="SPARK_DRIVER_HOST"):
            cluster.session()  # another host: no default is assumed
        with pytest.raises(RuntimeError, match="executors registered"):
            cluster.session(driver_host="127.0.0.1", executor_timeout_s=40)
        spark = cluster.session(driver_host=DRIVER_IP)
        try:
            assert spark.conf.get("spark.driver.host") == DRIVER_IP
            got = return_trips(to_spark(spark, trips), r, method="ends").toPandas()
        finally:
            spark.stop()
    assert len(want) > 20
    assert as_pairs(got) == as_pairs(want)
