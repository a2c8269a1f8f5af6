import logging

# GitPython logs every git command at DEBUG; a test run with --debug somewhere would
# fill the CI log with them. Our own debug lines stay.
logging.getLogger("git").setLevel(logging.INFO)
