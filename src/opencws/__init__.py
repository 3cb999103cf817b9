"""OpenCWS: open-source Cloud Workload Security."""

__version__ = "0.1.0"
