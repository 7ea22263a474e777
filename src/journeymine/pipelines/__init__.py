"""The Prefect flows: the nightly run, and mining on a Dask cluster."""
