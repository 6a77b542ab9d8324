"""The library's base layer: errors, progress/cancel callbacks, the options schema, image I/O, intensity
normalisation and colour. Imports nothing else of MedFusionLib."""
