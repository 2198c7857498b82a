"""The built-in dashboard: the star schema's views and the pipeline's health, as server-rendered pages."""
