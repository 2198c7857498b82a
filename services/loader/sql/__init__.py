"""The loader's SQL statements, shipped as package data (read by ``services.loader.statements``)."""
