from __future__ import annotations

import sys

from journeymine.cli import main

sys.exit(main())
