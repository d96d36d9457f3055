"""The verifier process: read-only, fast token decisions for resource servers."""
