"""The two commands that turn the repository into an installed hubcost.

The wheel test runs them, and the Dockerfile's build and final stages run the same ones
(tests/deploy checks that), so the image installs exactly what the test proved works.
"""

BUILD_WHEEL = ("python", "-m", "pip", "wheel", "--no-deps", "--wheel-dir", "{wheels}", "{source}")
INSTALL_WHEEL = ("python", "-m", "pip", "install", "--no-cache-dir", "{wheel}")
