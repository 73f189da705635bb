"""Local emulators of the vendor APIs and the synthetic firm (the outside world, on one machine)."""
