"""Stage entry points (sanity, train, evaluate, render, report), the stage registry and the params schema."""
