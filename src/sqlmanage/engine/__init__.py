"""What sqlmanage knows and does about migrations, below the commands and renderers."""
