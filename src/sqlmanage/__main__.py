import sys

from sqlmanage.cli import main

sys.exit(main())
