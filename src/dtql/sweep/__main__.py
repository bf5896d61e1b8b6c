"""``python -m dtql.sweep SPEC.json``: one worker process of a sweep (``dtql.sweep.worker``)."""

import sys

from dtql.sweep.worker import main

sys.exit(main(sys.argv[1:]))
