"""HTTP glue shared by the registry and the verifier: error rendering, body reading, headers."""
