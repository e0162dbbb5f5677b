"""One module per command; ``base`` holds what they share."""
