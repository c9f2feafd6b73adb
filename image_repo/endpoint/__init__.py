"""HTTP endpoints, one package per endpoint group; only the app factory imports them."""
