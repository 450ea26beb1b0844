import sys

from hubcost.cli import main

sys.exit(main())
