"""journeymine: rebuild the journeys customers actually take, and show where they break.

The documented workflows (README, notebooks, docs/api.md) need only these names:

>>> import journeymine as jm
>>> wh = jm.open_warehouse("out/warehouse.duckdb")
>>> list(wh.view("stage_funnel").columns[:3])
['segment', 'position', 'stage']
>>> jm.__version__ == __import__("importlib.metadata").metadata.version("journeymine")
True
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from journeymine.api import (
    FIGURES,
    TABLES,
    Warehouse,
    analyse,
    export_dashboard,
    figure,
    import_log,
    load,
    load_spec,
    open_warehouse,
)
from journeymine.errors import JourneymineError
from journeymine.ingest.load import load_landing

try:
    __version__ = version("journeymine")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "FIGURES",
    "TABLES",
    "JourneymineError",
    "Warehouse",
    "__version__",
    "analyse",
    "export_dashboard",
    "figure",
    "import_log",
    "load",
    "load_landing",
    "load_spec",
    "open_warehouse",
]
