"""`python -m agent.cli`: the same as `linetwin`."""

import sys

from agent.cli.main import main

sys.exit(main())
