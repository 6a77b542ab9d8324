"""Pictures of results: orthogonal-plane previews and labelled montages (PNG)."""
