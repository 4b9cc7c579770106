"""The trio layer: executors, tasks, built-ins and the host side of async values."""
