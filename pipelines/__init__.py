"""Prefect flows that wire journeymine functions into the nightly job."""
