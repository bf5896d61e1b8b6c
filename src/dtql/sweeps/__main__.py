"""``python -m dtql.sweeps SPEC.json``: one worker process of a sweep (``dtql.sweeps.worker``)."""

import sys

from dtql.sweeps.worker import main

sys.exit(main(sys.argv[1:]))
