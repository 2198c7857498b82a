"""The unzipper (a Lambda contract): checks each landed bundle against its manifest, then publishes it."""

STAGE = "unzipper"
