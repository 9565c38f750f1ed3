"""The viewer session without a UI: view state (window, zoom, pan, measurements) and the background
slice loader with its caches. Sits on top of imaging, graphics and the inspector."""
