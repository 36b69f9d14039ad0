"""Same as app.py (the bundled demo service): `python -m contprof demo.py`."""
import os

from app import main

if __name__ == "__main__":
    main(float(os.environ.get("DEMO_SECONDS", "6")))
