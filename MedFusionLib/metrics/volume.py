def score(*a, **k): pass
