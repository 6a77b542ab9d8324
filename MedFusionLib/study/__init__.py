"""Many cases: manifest reading, the per-case runner (one record per case), and the one-case comparison of
every method (``compare``). ``batch`` uses it today; ``study`` and the cohort engine build on it."""
