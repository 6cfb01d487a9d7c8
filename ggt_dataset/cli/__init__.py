"""The ``ggt`` command. Each verb lives in its own module and calls one library function."""
