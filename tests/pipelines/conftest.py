from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def dask_scheduler() -> Iterator[str]:
    """One running scheduler with 2 worker processes for every Dask test of the session, as a
    data engineer would start one (a cluster takes seconds to start on a busy machine)."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster:
        yield cluster.scheduler_address
