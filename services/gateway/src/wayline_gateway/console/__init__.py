"""The journey console's files (built from `console/` at the repo root by `make console`) and how the
gateway's HTTP server serves them."""
