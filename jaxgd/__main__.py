"""``python -m jaxgd``: fit car weight -> mpg on the embedded Auto MPG data and print it."""

from jaxgd.quickstart import main

if __name__ == "__main__":
    raise SystemExit(main())
