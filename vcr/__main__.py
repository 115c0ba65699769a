"""`python -m claude_vcr` runs the same CLI as the `claude-vcr` script."""

from .cli import main

if __name__ == "__main__":
    main()
