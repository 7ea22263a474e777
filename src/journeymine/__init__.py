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
from typing import TYPE_CHECKING

from journeymine.api import (
    FIGURES,
    TABLES,
    Warehouse,
    callable_module,
    export_dashboard,
    figure,
    import_log,
    load_spec,
    open_warehouse,
)
from journeymine.api import analyse as _analyse
from journeymine.api import load as _load
from journeymine.errors import JourneymineError
from journeymine.load import load_landing

# `jm.load(...)` / `jm.analyse(...)` run the workflow; the names stay the modules for imports
# (see api.CallableModule).
if TYPE_CHECKING:  # to a type checker they are the modules; calling them is not checked
    from journeymine import analyse, load
else:
    load = callable_module("journeymine.load", _load)
    analyse = callable_module("journeymine.analyse", _analyse)

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
