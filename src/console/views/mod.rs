//! Pure views: each screen draws the application state into a frame and changes nothing.
