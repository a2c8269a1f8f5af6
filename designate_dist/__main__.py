import sys

from designate_dist.cli import main

sys.exit(main())
