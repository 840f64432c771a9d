"""One module per phase activity."""
