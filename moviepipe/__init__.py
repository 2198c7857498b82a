"""The moviepipe command line and the local stack it runs."""
