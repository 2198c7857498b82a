"""The extractor: reads a movie source, bundles it (CSV + Parquet + manifest, zipped) and lands it in S3."""
