import logging
import sys
import warnings

# GitPython logs every git command at DEBUG; a test run with --debug somewhere would
# fill the CI log with them. Our own debug lines stay.
logging.getLogger("git").setLevel(logging.INFO)

# The plugin tests import Designate as released (without customs/0004), whose eventlet
# announces its deprecation on import, above the run's output.
if not sys.warnoptions:
    warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")
