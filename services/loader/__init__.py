"""The loader: Snowpipe's job. Copies each archived bundle into the warehouse once, then reconciles it."""
