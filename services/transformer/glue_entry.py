"""The AWS Glue job's script. The job itself arrives with each run, in ``--extra-py-files``.

This file never changes, so the Glue job definition never needs to; ``glue_assets`` uploads it once.
"""

import sys

from services.transformer.glue_job import main

main(sys.argv)
