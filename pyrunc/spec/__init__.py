"""Reading and validating an OCI bundle's config.json.

load (file → dict) → schema (jsonschema against oci-schemas/) → check (rules
the schema cannot express) → model (typed objects the runtime uses).
"""
