"""`python -m pixmorph` (and `torchrun -m pixmorph`) runs the command line."""

import sys

from pixmorph.cli import main

sys.exit(main())
