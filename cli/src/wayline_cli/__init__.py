"""The `wayline` command: run the suite on one machine and show it working."""
