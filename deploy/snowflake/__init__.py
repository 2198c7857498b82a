"""The production Snowflake SQL (database, storage, tables, pipe, stream, tasks) and its generator."""
