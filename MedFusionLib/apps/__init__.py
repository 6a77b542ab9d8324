"""Front-ends over the library: the ``medfusion`` command (``cli/``), the Slicer module's worker process
(``worker``) and the demo. Nothing in the library imports this package."""
