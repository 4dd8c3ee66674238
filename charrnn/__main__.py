"""`python -m charrnn` runs the CLI."""

from .cli import main

if __name__ == "__main__":  # not when a spawned worker process (a Dask LocalCluster's) re-imports this module
    main()
