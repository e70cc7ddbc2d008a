"""`python -m suf.cli ...`: the command line (the parties of `suf run` start this way)."""
import sys

from suf.cli import main

sys.exit(main())
