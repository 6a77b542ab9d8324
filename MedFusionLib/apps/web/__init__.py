"""``medfusion app``: the MedFusion module's panel in a browser, on trame-slicer (Slicer's real slice views
rendered on the server). :mod:`.app` holds the state and the work, :mod:`.layout` the page."""
