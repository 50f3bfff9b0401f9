"""What the CLI and the app both show: numbers, eval tables, run rows, dataset stats, errors."""
