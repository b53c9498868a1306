import sys

from ncfd.cli import main

sys.exit(main())
