"""The parent process of a run: plan, shards, the runner and its workers, lifetime, clusters, run folders."""
