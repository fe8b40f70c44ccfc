"""`make bench`: the benchmark suite (see bench/README.md)."""
