"""`learnstream bench`: the pipeline measured against its hardware limit and its peers.

The peers (streams/devkit/bench/peers/) are separate programs, not product code: each reads the same
pre-loaded topics and writes the same tables, the way its kind of user would write it.
"""
