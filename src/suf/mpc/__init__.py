"""The two-party machinery every gate uses: the dealer, a party, key (de)serialisation, and the
gate interface with its registry (suf.mpc.gate)."""
