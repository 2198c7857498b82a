-- COPY cannot say which file a row came from here, so the rows this transaction just copied (the only
-- ones of the extract without a FILE_NAME: every committed row has one) are stamped with it before the
-- commit, and with their extract's source, kind and time, which the star schema's merge orders by.
UPDATE {database}.{table}
SET
    FILE_NAME = %(file_name)s,
    SOURCE = %(source)s,
    EXTRACT_KIND = %(extract_kind)s,
    EXTRACTED_AT = %(extracted_at)s
WHERE FILE_NAME IS NULL AND EXTRACT_ID = %(extract_id)s
