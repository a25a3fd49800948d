#!/usr/bin/env python3
"""Build, train and run a real Rasa 3.6 server: see bot/engines/rasa_server.py.

Runs with any Python 3.10+ (CI runs it before the hub's environment exists).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.engines.rasa_server import main

if __name__ == "__main__":
    sys.exit(main())
