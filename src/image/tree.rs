//! A view of every path an image will contain, across its layers.
