"""Where the repository's folders are, for the tests in every sub-folder of tests/."""

from pathlib import Path

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
CONFIG = REPO / "config"
