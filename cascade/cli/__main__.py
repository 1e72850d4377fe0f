"""`python -m cascade.cli`: the same as the `cascade` command."""

import sys

from cascade.cli.main import main

sys.exit(main())
