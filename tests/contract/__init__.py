"""The Runtime contract suite: one set of tests for the fake, exec and Docker runtimes."""
