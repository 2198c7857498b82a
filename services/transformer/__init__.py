"""The transformer stage: processed extract in, cleansed archive out.

``handler`` (S3/SQS entry point), ``processed`` (what triggered it, cheap input checks), ``runner``
(local warm Spark or AWS Glue), ``glue_job`` (the Spark job itself), ``archive`` (parts and manifest),
``quarantine`` (bad input kept with its reason), ``app`` (the service), ``settings``, ``exceptions``.
"""
