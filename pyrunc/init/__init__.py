"""The container's side of `create`: the processes pyrunc forks.

stage1 joins the cgroups and namespaces; usually it was cloned straight into
them and goes on as the container init (stage2), which builds the container
and waits for `start`; otherwise it forks that init. No interpreter is
started again: both are forks of the `pyrunc create` process, which already
holds the validated config.
"""
