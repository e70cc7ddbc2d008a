"""The lowest layer: the ring Z_{2^n} and SIGMA's packing (ring), exact ring matmul (linalg), one
configuration (config), one error hierarchy (errors) and cleartext range checks (checks)."""
