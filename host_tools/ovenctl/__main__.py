import sys

from ovenctl.cli import main

sys.exit(main())
