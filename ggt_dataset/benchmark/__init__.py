"""The GGT-100K benchmark: submission records (record.py), ``ggt submit`` (submit.py) and
``ggt leaderboard verify`` (verify.py). The schema is documented in docs/benchmark.md."""
