"""journeymine: rebuild the journeys customers actually take, and show where they break.

>>> import journeymine as jm
>>> wh = jm.open_warehouse("out/warehouse.duckdb")
>>> wh.view("stage_funnel")
"""

from __future__ import annotations

from journeymine.api import Warehouse, open_warehouse
from journeymine.errors import JourneymineError
from journeymine.load import load_landing

__version__ = "0.1.0"
__all__ = ["JourneymineError", "Warehouse", "load_landing", "open_warehouse"]
