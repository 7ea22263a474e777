"""prefect.yaml's entry point (``pipelines/nightly.py:nightly``): the flow is in the package."""

from journeymine.pipelines.nightly import nightly

__all__ = ["nightly"]
