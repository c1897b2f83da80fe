"""`python -m nramdsl …` is the `nramdsl` command."""

import sys

from nramdsl.cli import main

sys.exit(main())
