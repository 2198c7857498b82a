"""Infrastructure: the one declarative list of AWS resources, and what applies it."""
