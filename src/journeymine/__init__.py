"""journeymine: rebuild the journeys customers actually take, and show where they break."""

from __future__ import annotations

__version__ = "0.1.0"
