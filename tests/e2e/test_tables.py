"""The numbers tables in README.md and docs/*.md are the ones benchmarks/tables.py makes from the
committed result files (benchmarks/results/): a result file and the table that shows it cannot
drift apart.  Fix a failure with `python benchmarks/tables.py`, never by editing a block by hand."""
import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_generated_tables_match_the_result_files():
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks/tables.py"), "--check"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr + res.stdout


def test_every_block_is_marked_once():
    spec = importlib.util.spec_from_file_location("suf_bench_tables", ROOT / "benchmarks/tables.py")
    tables = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tables)
    for name, (path, _) in tables.BLOCKS.items():
        text = (ROOT / path).read_text()
        assert text.count(f"<!-- tables:{name} -->") == 1, (path, name)
        assert text.count(f"<!-- /tables:{name} -->") == 1, (path, name)
    assert not tables.unknown_blocks()
