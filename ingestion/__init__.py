"""Ingestion: dlt sources for HubSpot, Harvest and NetSuite and the pipeline runner (issue 3)."""
