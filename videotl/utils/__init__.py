"""Small helpers shared by the package and the tool scripts."""
