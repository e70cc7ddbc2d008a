"""SIGMA's gates, one module per gate.

Each module holds the gate's cleartext fixed-point `reference...` functions (the test oracle,
bit-exact with SIGMA's ClearText backend inside each gate's documented input range, see
`ranges`), and later the secure `keygen`/`eval`.  `tables` holds the public lookup tables.
"""
