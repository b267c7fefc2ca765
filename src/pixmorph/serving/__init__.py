"""`pixmorph serve`: trained models as a web page and a JSON/HTTP API (needs pixmorph[serve])."""
