"""`python -m vcr` runs the same CLI as the `claude-vcr` script."""

from vcr.cli import main

if __name__ == "__main__":
    main()
