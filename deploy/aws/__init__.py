"""The pipeline's AWS CloudFormation template, generated from the one declarative resource list.

``python -m deploy.aws.template`` writes ``deploy/aws/moviepipe.yaml``; ``--check`` fails when the
committed file and the generator disagree.
"""
