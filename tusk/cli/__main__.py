"""``python -m tusk.cli``."""

from tusk.cli.main import main

main()
