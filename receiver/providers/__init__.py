"""One module per test platform: its payload structs, its client, and how its results normalise."""

from typing import Final

# Every provider's name, as `provider` in POST /api/jobs and --provider on the command line.
# QualityMax calls back; the polling ones are triggered, then asked until their runs end.
QUALITYMAX: Final = "qualitymax"
POLLING_PROVIDERS: Final = ("qualigate", "qualgent")
PROVIDERS: Final = (QUALITYMAX, *POLLING_PROVIDERS)
