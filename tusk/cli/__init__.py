"""The ``tusk`` / ``pachctl`` command line (Click); speaks to tuskd only through :mod:`tusk.client`."""
