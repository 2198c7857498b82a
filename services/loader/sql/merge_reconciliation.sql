-- One row per extract; a replay that finds the same counts leaves the row (and RECONCILED_AT) as it was.
MERGE INTO {database}.AUDIT.RECONCILIATION AS target
USING (
    SELECT
        %(extract_id)s AS EXTRACT_ID,
        %(source)s AS SOURCE,
        %(rows_extracted)s AS ROWS_EXTRACTED,
        %(rows_loaded)s AS ROWS_LOADED,
        %(rows_rejected)s AS ROWS_REJECTED,
        %(rows_duplicate)s AS ROWS_DUPLICATE,
        %(status)s AS STATUS
) AS incoming
ON target.EXTRACT_ID = incoming.EXTRACT_ID
WHEN MATCHED AND (
    target.ROWS_EXTRACTED <> incoming.ROWS_EXTRACTED
    OR target.ROWS_LOADED <> incoming.ROWS_LOADED
    OR target.ROWS_REJECTED <> incoming.ROWS_REJECTED
    OR target.ROWS_DUPLICATE <> incoming.ROWS_DUPLICATE
    OR target.STATUS <> incoming.STATUS
) THEN UPDATE SET
    SOURCE = incoming.SOURCE,
    ROWS_EXTRACTED = incoming.ROWS_EXTRACTED,
    ROWS_LOADED = incoming.ROWS_LOADED,
    ROWS_REJECTED = incoming.ROWS_REJECTED,
    ROWS_DUPLICATE = incoming.ROWS_DUPLICATE,
    STATUS = incoming.STATUS,
    RECONCILED_AT = CURRENT_TIMESTAMP()
WHEN NOT MATCHED THEN INSERT (
    EXTRACT_ID, SOURCE, ROWS_EXTRACTED, ROWS_LOADED, ROWS_REJECTED, ROWS_DUPLICATE, STATUS, RECONCILED_AT
) VALUES (
    incoming.EXTRACT_ID,
    incoming.SOURCE,
    incoming.ROWS_EXTRACTED,
    incoming.ROWS_LOADED,
    incoming.ROWS_REJECTED,
    incoming.ROWS_DUPLICATE,
    incoming.STATUS,
    CURRENT_TIMESTAMP()
)
