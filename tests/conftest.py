import sys
from pathlib import Path

# tests/ is a package; make the project root importable when running from anywhere.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
