"""The synthetic firm generator."""
