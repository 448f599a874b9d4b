"""The console at `/`: a page for building and debugging agents in a browser.

`routes` serves it; `static/` holds the page, its ES modules and its stylesheet,
served as they are (no build step, nothing loaded from elsewhere).
"""
