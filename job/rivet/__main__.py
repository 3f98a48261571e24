import sys

from rivet.cli import main

sys.exit(main())
