"""Dataset tools: build, convert and check the folder layouts pixmorph trains on."""
