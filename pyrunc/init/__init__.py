"""The container's side of `create`: the processes pyrunc forks.

stage1 joins and creates namespaces and forks the container init (stage2),
which builds the container and waits for `start`. No interpreter is started
again: both are forks of the `pyrunc create` process, which already holds the
validated config.
"""
