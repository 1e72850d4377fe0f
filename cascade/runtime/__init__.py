"""Running a cascade: the plan, the ledger of attempts, billed calls with retries, the drive loop."""
