"""Administration of every §4 object and §5 policy: generic handlers over a per-kind registry."""
