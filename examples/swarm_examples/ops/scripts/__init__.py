"""The allow-listed scripts the engineering desk's script runner may run (one file each); nothing
outside this folder can be run, and each runs without a shell, under a timeout.
"""
