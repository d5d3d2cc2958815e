"""Linux primitives: system calls, /proc parsing, namespaces, mounts, cgroups.

Nothing here knows about OCI bundles beyond the plain values it is handed.
"""
