"""`python -m halo_live ...` is `halo-live ...`."""

import sys

from halo_live.cli import main

sys.exit(main())
