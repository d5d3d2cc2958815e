"""The operations behind the CLI verbs, one module per concern.

Each `cmd_*` takes the parsed command line and returns what the CLI prints (a
str) or an exit code. Status rules and error wording follow runc where
engines match on the text ("container does not exist", "container not
running"). Imports flow one way: ops → store, spec, launcher → init → linux.
"""
