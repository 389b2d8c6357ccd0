"""The benchmark sections. Each module exposes `run(ctx: Context) -> list[Section]`."""
