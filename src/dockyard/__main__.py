"""`python -m dockyard` runs the command line."""

from dockyard.cli import main

main()
