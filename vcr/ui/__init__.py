"""`claude-vcr ui`: a local, read-only web viewer of a vcr.db (cassettes, recordings, misses).

    from claude_vcr.ui.server import serve

    serve(Path("vcr.db"), port=8100)

Served by aiohttp from the package (HTML built server-side, one stylesheet and one small script as package
data): no CDN, no build step, works offline and from the pyz.
"""
